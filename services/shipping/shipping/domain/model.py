"""Shipping domain: a shipment requested for a reserved order, dispatched, delivered.

The shipping service is the authority on what left the warehouse:

    REQUESTED ──dispatch──▶ DISPATCHED ──deliver──▶ DELIVERED
        │
        └──cancel──▶ CANCELLED (terminal; also recorded, with no goods, for an order
                     cancelled before its shipment was requested: none may be now)

A cancellation (``OrderCancellationRequested``) and a dispatch of the same order are
serialised on the shipment's row lock, and a cancellation and a shipment request on
the order's unique shipment row: whichever comes first wins, and the other sees it.
A cancellation finding the goods gone (DISPATCHED, DELIVERED) is refused.

A repeated dispatch with the same carrier and tracking number, or a repeated
delivery, changes nothing and is answered as the shipment is. Another carrier or
tracking number once dispatched, a dispatch of a cancelled shipment, or a delivery
of one that never left, is refused (``ShipmentConflict``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class ShipmentStatus(StrEnum):
    REQUESTED = "REQUESTED"
    DISPATCHED = "DISPATCHED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class DomainError(Exception):
    """A rule of the domain was broken by the request."""


class ShipmentNotFound(DomainError):
    def __init__(self, order_id: uuid.UUID | str) -> None:
        super().__init__(f"order {order_id} has no shipment")
        self.order_id = order_id


class ShipmentConflict(DomainError):
    """The shipment's status forbids the transition asked for."""


class GoodsLeft(DomainError):
    """A cancellation came after the goods had left: shipping refuses it."""


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    order_id: uuid.UUID
    lines: list[ShipmentLine]
    # None for a cancellation recorded before any shipment was requested.
    shipping_address: dict[str, object] | None
    correlation_id: str
    status: ShipmentStatus = ShipmentStatus.REQUESTED
    shipment_id: uuid.UUID = field(default_factory=uuid.uuid4)
    requested_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    dispatched_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None

    @classmethod
    def never_requested(cls, order_id: uuid.UUID, correlation_id: str, now: datetime) -> Shipment:
        """The record of an order cancelled before its shipment was requested."""
        return cls(
            order_id=order_id,
            lines=[],
            shipping_address=None,
            correlation_id=correlation_id,
            status=ShipmentStatus.CANCELLED,
            cancelled_at=now,
        )

    @property
    def was_requested(self) -> bool:
        return self.shipping_address is not None

    def cancel(self, now: datetime) -> Shipment | None:
        """The shipment cancelled, or None when it already was; ``GoodsLeft`` once dispatched."""
        if self.status is ShipmentStatus.REQUESTED:
            return replace(self, status=ShipmentStatus.CANCELLED, cancelled_at=now)
        if self.status is ShipmentStatus.CANCELLED:
            return None
        raise GoodsLeft(f"the shipment is {self.status.value}: the goods have left")

    def dispatch(self, carrier: str, tracking_number: str, now: datetime) -> Shipment | None:
        """The shipment dispatched, or None when it already was with these details."""
        if self.status is ShipmentStatus.REQUESTED:
            return replace(
                self,
                status=ShipmentStatus.DISPATCHED,
                carrier=carrier,
                tracking_number=tracking_number,
                dispatched_at=now,
            )
        if self.status is ShipmentStatus.CANCELLED:
            raise ShipmentConflict("the shipment was cancelled: nothing may be dispatched")
        if (self.carrier, self.tracking_number) == (carrier, tracking_number):
            return None
        raise ShipmentConflict(
            f"the shipment was already dispatched with {self.carrier} {self.tracking_number}"
        )

    def deliver(self, now: datetime) -> Shipment | None:
        """The shipment delivered, or None when it already was."""
        if self.status is ShipmentStatus.DISPATCHED:
            return replace(self, status=ShipmentStatus.DELIVERED, delivered_at=now)
        if self.status is ShipmentStatus.DELIVERED:
            return None
        raise ShipmentConflict(f"a {self.status.value} shipment cannot be delivered: it has not left")
