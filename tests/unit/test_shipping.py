"""Shipping use cases on in-memory fakes: no database, no sockets."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from common.events import (
    DomainEvent,
    EventMetadata,
    InventoryReserved,
    OrderCancellationRequested,
    ReservedItem,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentRequested,
    ShippingAddress,
)
from shipping.domain.model import Shipment, ShipmentConflict, ShipmentStatus
from shipping.usecases import Handled, cancel_shipment, request_shipment
from tests.unit.fakes import FakeOutbox, FakeProcessed

ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB"
)


class State:
    def __init__(self) -> None:
        self.shipments: dict[uuid.UUID, Shipment] = {}
        self.outbox: list[DomainEvent] = []
        self.processed: set[tuple[str, uuid.UUID]] = set()


class FakeShipments:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def add(self, shipment: Shipment) -> bool:
        if shipment.order_id in self._uow.work.shipments:
            return False
        self._uow.work.shipments[shipment.order_id] = shipment
        return True

    def get_for_order(self, order_id: uuid.UUID) -> Shipment | None:
        return self._uow.work.shipments.get(order_id)

    def lock_for_order(self, order_id: uuid.UUID) -> Shipment | None:
        return self._uow.work.shipments.get(order_id)

    def save(self, shipment: Shipment) -> None:
        self._uow.work.shipments[shipment.order_id] = shipment


class FakeUnitOfWork:
    """``with`` works on a copy of the committed state; ``commit`` keeps it."""

    def __init__(self) -> None:
        self.committed = State()
        self.work = self.committed
        self.shipments = FakeShipments(self)
        self.outbox = FakeOutbox(self.work.outbox)
        self.processed = FakeProcessed(self.work.processed)

    def __enter__(self) -> FakeUnitOfWork:
        self.work = copy.deepcopy(self.committed)
        self.outbox = FakeOutbox(self.work.outbox)
        self.processed = FakeProcessed(self.work.processed)
        return self

    def __exit__(self, *args: Any) -> None:
        self.work = self.committed

    def commit(self) -> None:
        self.committed = copy.deepcopy(self.work)


def inventory_reserved(order_id: uuid.UUID | None = None) -> InventoryReserved:
    return InventoryReserved(
        order_id=order_id or uuid.uuid4(),
        customer_id="customer-1",
        items=[ReservedItem(sku="SKU-1", quantity=2), ReservedItem(sku="SKU-2", quantity=1)],
        shipping_address=ADDRESS,
        metadata=EventMetadata.new("corr-1", causation_id=str(uuid.uuid4())),
    )


def test_a_reserved_order_gets_a_shipment_and_shipment_requested():
    # Given an order whose stock is reserved
    uow = FakeUnitOfWork()
    event = inventory_reserved()

    # When it is handled
    result = request_shipment(event, uow)

    # Then one shipment is recorded and announced, caused by the reservation
    assert result.handled is Handled.REQUESTED
    shipment = uow.committed.shipments[event.order_id]
    assert shipment.status is ShipmentStatus.REQUESTED
    assert shipment.correlation_id == "corr-1"
    assert [(line.sku, line.quantity) for line in shipment.lines] == [("SKU-1", 2), ("SKU-2", 1)]
    [published] = uow.committed.outbox
    assert isinstance(published, ShipmentRequested)
    assert published.shipment_id == shipment.shipment_id
    assert published.order_id == event.order_id
    assert published.items == event.items
    assert published.shipping_address == ADDRESS
    assert published.metadata.correlation_id == "corr-1"
    assert published.metadata.causation_id == str(event.metadata.event_id)


def test_the_same_event_twice_changes_nothing():
    uow = FakeUnitOfWork()
    event = inventory_reserved()
    request_shipment(event, uow)
    assert request_shipment(event, uow).handled is Handled.DUPLICATE_EVENT
    assert len(uow.committed.shipments) == 1
    assert len(uow.committed.outbox) == 1


def test_the_same_order_under_a_new_event_id_keeps_its_one_shipment():
    uow = FakeUnitOfWork()
    first = inventory_reserved()
    request_shipment(first, uow)
    shipment_id = uow.committed.shipments[first.order_id].shipment_id

    again = first.model_copy(update={"metadata": EventMetadata.new("corr-1")})
    assert request_shipment(again, uow).handled is Handled.ORDER_ALREADY_SHIPPING

    assert uow.committed.shipments[first.order_id].shipment_id == shipment_id
    assert len(uow.committed.outbox) == 1
    assert ("shipping", again.metadata.event_id) in uow.committed.processed


# --- cancellation: shipping decides ------------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def cancellation(order_id: uuid.UUID) -> OrderCancellationRequested:
    return OrderCancellationRequested(
        order_id=order_id, customer_id="customer-1", metadata=EventMetadata.new("c")
    )


def test_a_requested_shipment_is_cancelled_and_can_no_longer_be_dispatched():
    uow = FakeUnitOfWork()
    reserved = inventory_reserved()
    request_shipment(reserved, uow)
    result = cancel_shipment(cancellation(reserved.order_id), uow, clock=lambda: NOW)
    assert result.handled is Handled.CANCELLED
    assert isinstance(result.published, ShipmentCancelled) and result.published.shipment_id is not None
    shipment = uow.committed.shipments[reserved.order_id]
    assert (shipment.status, shipment.cancelled_at) == (ShipmentStatus.CANCELLED, NOW)
    with pytest.raises(ShipmentConflict):
        shipment.dispatch("DHL", "1", NOW)
    # another event for the same cancellation: nothing more
    again = cancel_shipment(cancellation(reserved.order_id), uow)
    assert again.handled is Handled.ALREADY_CANCELLED and again.outbox_ids == ()


def test_a_cancellation_before_any_shipment_forbids_one():
    uow = FakeUnitOfWork()
    order_id = uuid.uuid4()
    result = cancel_shipment(cancellation(order_id), uow, clock=lambda: NOW)
    assert result.handled is Handled.CANCELLED
    assert isinstance(result.published, ShipmentCancelled) and result.published.shipment_id is None
    assert not uow.committed.shipments[order_id].was_requested
    late = request_shipment(inventory_reserved(order_id), uow)
    assert late.handled is Handled.ORDER_CANCELLED and late.published is None
    assert [type(e) for e in uow.committed.outbox] == [ShipmentCancelled]


@pytest.mark.parametrize("gone", ["dispatched", "delivered"])
def test_a_cancellation_after_the_goods_left_is_refused(gone):
    uow = FakeUnitOfWork()
    reserved = inventory_reserved()
    request_shipment(reserved, uow)
    shipment = uow.committed.shipments[reserved.order_id].dispatch("DHL", "1", NOW)
    assert shipment is not None
    if gone == "delivered":
        shipment = shipment.deliver(NOW)
        assert shipment is not None
    uow.committed.shipments[reserved.order_id] = shipment
    result = cancel_shipment(cancellation(reserved.order_id), uow)
    assert result.handled is Handled.CANCELLATION_REFUSED
    assert isinstance(result.published, ShipmentCancellationRefused)
    assert uow.committed.shipments[reserved.order_id].status is shipment.status
