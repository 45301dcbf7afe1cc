"""Shipping domain: a shipment requested for a reserved order, dispatched, delivered.

The shipping service is the authority on what left the warehouse:

    REQUESTED ──dispatch──▶ DISPATCHED ──deliver──▶ DELIVERED

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


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    order_id: uuid.UUID
    lines: list[ShipmentLine]
    shipping_address: dict[str, object]
    correlation_id: str
    status: ShipmentStatus = ShipmentStatus.REQUESTED
    shipment_id: uuid.UUID = field(default_factory=uuid.uuid4)
    requested_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    dispatched_at: datetime | None = None
    delivered_at: datetime | None = None

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
