"""Shipping use cases on in-memory fakes: no database, no sockets."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from common.events import (
    DomainEvent,
    EventMetadata,
    InventoryReserved,
    ReservedItem,
    ShipmentRequested,
    ShippingAddress,
)
from shipping.domain.model import Shipment, ShipmentStatus
from shipping.usecases import Handled, request_shipment
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
