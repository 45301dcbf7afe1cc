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
    OrderCancellationRequested,
    ReservedItem,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
    ShippingAddress,
)
from shipping.domain.commands import DeliverShipment, DispatchShipment
from shipping.domain.model import GoodsLeft, Shipment, ShipmentLine, ShipmentNotFound, ShipmentStatus
from shipping.domain.ports import ApiUnitOfWork, UnitOfWork

CONSUMER = "shipping"  # this service's name in eventing.processed_events


class Handled(StrEnum):
    REQUESTED = "REQUESTED"
    DUPLICATE_EVENT = "DUPLICATE_EVENT"  # this eventId was handled before
    ORDER_ALREADY_SHIPPING = "ORDER_ALREADY_SHIPPING"  # another event for the order was
    ORDER_CANCELLED = "ORDER_CANCELLED"  # the order was cancelled first: no shipment, ever
    CANCELLED = "CANCELLED"  # the shipment (or, before any request, the order's) was cancelled
    ALREADY_CANCELLED = "ALREADY_CANCELLED"
    CANCELLATION_REFUSED = "CANCELLATION_REFUSED"  # the goods had left


@dataclass(frozen=True)
class ShipmentResult:
    handled: Handled
    published: ShipmentRequested | ShipmentCancelled | ShipmentCancellationRefused | None = None
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
            existing = uow.shipments.get_for_order(event.order_id)
            uow.commit()  # remembers this eventId; the first shipment (or cancellation) stands
            if existing is not None and existing.status is ShipmentStatus.CANCELLED:
                return ShipmentResult(Handled.ORDER_CANCELLED)
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


Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def cancel_shipment(
    event: OrderCancellationRequested, uow: UnitOfWork, clock: Clock = _utcnow
) -> ShipmentResult:
    """Decide a cancellation, since only shipping knows whether the goods left, and
    announce the answer, in one transaction.

    * A REQUESTED shipment is cancelled: ``ShipmentCancelled``.
    * No shipment yet: a CANCELLED record takes the order's one shipment row, so
      that a late ``InventoryReserved`` creates none: ``ShipmentCancelled`` (no
      ``shipmentId``). A request racing this one waits on the row's unique order id;
      if it committed first, its shipment is locked and cancelled instead.
    * DISPATCHED or DELIVERED: ``ShipmentCancellationRefused``; the order ships.
    * Already CANCELLED (another event for the same cancellation): nothing.

    The shipment row is locked first, as a dispatch locks it, so the two never both win.
    """
    with uow:
        if not uow.processed.mark(CONSUMER, event.metadata.event_id):
            return ShipmentResult(Handled.DUPLICATE_EVENT)
        now = clock()
        current = uow.shipments.lock_for_order(event.order_id)
        if current is None:
            record = Shipment.never_requested(event.order_id, event.metadata.correlation_id, now)
            if uow.shipments.add(record):
                return _announce_cancelled(uow, record, event, shipment_id=None)
            current = uow.shipments.lock_for_order(event.order_id)
            if current is None:
                raise RuntimeError("shipment insert conflicted but no shipment was found")
        try:
            cancelled = current.cancel(now)
        except GoodsLeft as left:
            refused = ShipmentCancellationRefused(
                order_id=current.order_id,
                shipment_id=current.shipment_id,
                reason=str(left),
                metadata=event.metadata.caused(),
            )
            outbox_id = uow.outbox.add(refused)
            uow.commit()
            return ShipmentResult(Handled.CANCELLATION_REFUSED, refused, (outbox_id,))
        if cancelled is None:
            uow.commit()
            return ShipmentResult(Handled.ALREADY_CANCELLED)
        uow.shipments.save(cancelled)
        return _announce_cancelled(uow, cancelled, event, shipment_id=cancelled.shipment_id)


def _announce_cancelled(
    uow: UnitOfWork, shipment: Shipment, event: OrderCancellationRequested, shipment_id: uuid.UUID | None
) -> ShipmentResult:
    assert shipment.cancelled_at is not None
    announced = ShipmentCancelled(
        order_id=shipment.order_id,
        shipment_id=shipment_id,
        cancelled_at=shipment.cancelled_at,
        metadata=event.metadata.caused(),
    )
    outbox_id = uow.outbox.add(announced)
    uow.commit()
    return ShipmentResult(Handled.CANCELLED, announced, (outbox_id,))


# --- dispatch and delivery (ShippingApiFunction) ---


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
