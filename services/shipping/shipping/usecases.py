"""Use cases of the shipping service: plain functions of an event and ports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.events import InventoryReserved, ReservedItem, ShipmentRequested, ShippingAddress
from shipping.domain.model import Shipment, ShipmentLine
from shipping.domain.ports import UnitOfWork

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
