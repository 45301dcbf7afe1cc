"""Use cases of the shipping service: plain functions of an event and ports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from common.events import (
    EventMetadata,
    InventoryReserved,
    ReservedItem,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
    ShippingAddress,
)
from shipping.domain.commands import DeliverShipment, DispatchShipment
from shipping.domain.model import Shipment, ShipmentLine, ShipmentNotFound
from shipping.domain.ports import ApiUnitOfWork, UnitOfWork

CONSUMER = "shipping"  # this service's name in eventing.processed_events


class Handled(StrEnum):
    REQUESTED = "REQUESTED"
    DUPLICATE_EVENT = "DUPLICATE_EVENT"  # this eventId was handled before
    ORDER_ALREADY_SHIPPING = "ORDER_ALREADY_SHIPPING"  # another event for the order was


@dataclass(frozen=True)
class ShipmentResult:
    handled: Handled
    published: ShipmentRequested | None = None
    outbox_ids: tuple[int, ...] = ()  # rows to publish right after the commit


def request_shipment(event: InventoryReserved, uow: UnitOfWork) -> ShipmentResult:
    """Record one shipment per reserved order and announce it, in one transaction.

    Idempotent on the event's ``eventId`` and on the order: a redelivery, or another
    ``InventoryReserved`` for an order that already has a shipment, changes nothing.
    """
    with uow:
        if not uow.processed.mark(CONSUMER, event.metadata.event_id):
            return ShipmentResult(Handled.DUPLICATE_EVENT)
        shipment = Shipment(
            order_id=event.order_id,
            lines=[ShipmentLine(item.sku, item.quantity) for item in event.items],
            shipping_address=event.shipping_address.model_dump(mode="json", by_alias=True),
            correlation_id=event.metadata.correlation_id,
        )
        if not uow.shipments.add(shipment):
            uow.commit()  # remembers this eventId; the first shipment stands
            return ShipmentResult(Handled.ORDER_ALREADY_SHIPPING)
        requested = ShipmentRequested(
            order_id=shipment.order_id,
            shipment_id=shipment.shipment_id,
            items=[ReservedItem(sku=line.sku, quantity=line.quantity) for line in shipment.lines],
            shipping_address=ShippingAddress.model_validate(shipment.shipping_address),
            metadata=event.metadata.caused(),
        )
        outbox_id = uow.outbox.add(requested)
        uow.commit()
    return ShipmentResult(Handled.REQUESTED, requested, (outbox_id,))


# --- dispatch and delivery (ShippingApiFunction) ---

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ShipmentChange:
    shipment: Shipment
    outbox_ids: tuple[int, ...] = ()  # empty when the request changed nothing (a repeat)


def get_shipment(order_id: uuid.UUID, uow: ApiUnitOfWork) -> Shipment:
    with uow:
        shipment = uow.shipments.get_for_order(order_id)
    if shipment is None:
        raise ShipmentNotFound(order_id)
    return shipment


def dispatch_shipment(cmd: DispatchShipment, uow: ApiUnitOfWork, clock: Clock = _utcnow) -> ShipmentChange:
    """Record that the goods left, and announce ``ShipmentDispatched``, in one transaction.

    The shipment row is locked first, so a dispatch racing a cancellation (which
    locks it too) sees the other's outcome: a cancelled shipment is never
    dispatched, a dispatched one never cancelled. A repeat with the same carrier and
    tracking number changes nothing and announces nothing.
    """
    with uow:
        current = uow.shipments.lock_for_order(cmd.order_id)
        if current is None:
            raise ShipmentNotFound(cmd.order_id)
        dispatched = current.dispatch(cmd.carrier, cmd.tracking_number, clock())
        if dispatched is None:
            return ShipmentChange(current)
        uow.shipments.save(dispatched)
        assert dispatched.dispatched_at is not None
        outbox_id = uow.outbox.add(
            ShipmentDispatched(
                order_id=dispatched.order_id,
                shipment_id=dispatched.shipment_id,
                items=[ReservedItem(sku=line.sku, quantity=line.quantity) for line in dispatched.lines],
                carrier=cmd.carrier,
                tracking_number=cmd.tracking_number,
                dispatched_at=dispatched.dispatched_at,
                metadata=EventMetadata.new(dispatched.correlation_id),
            )
        )
        uow.commit()
    return ShipmentChange(dispatched, (outbox_id,))


def deliver_shipment(cmd: DeliverShipment, uow: ApiUnitOfWork, clock: Clock = _utcnow) -> ShipmentChange:
    """Record that the goods arrived, and announce ``ShipmentDelivered``; a repeat changes nothing."""
    with uow:
        current = uow.shipments.lock_for_order(cmd.order_id)
        if current is None:
            raise ShipmentNotFound(cmd.order_id)
        delivered = current.deliver(clock())
        if delivered is None:
            return ShipmentChange(current)
        uow.shipments.save(delivered)
        assert delivered.delivered_at is not None
        outbox_id = uow.outbox.add(
            ShipmentDelivered(
                order_id=delivered.order_id,
                shipment_id=delivered.shipment_id,
                delivered_at=delivered.delivered_at,
                metadata=EventMetadata.new(delivered.correlation_id),
            )
        )
        uow.commit()
    return ShipmentChange(delivered, (outbox_id,))
