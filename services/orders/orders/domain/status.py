"""How an order's status follows the inventory and shipping events.

The status only ever moves forward, whatever order the events arrive in:

    PENDING ──InventoryReserved──▶ CONFIRMED ──ShipmentRequested──▶ SHIPPING
       │                                                                │
       └──InventoryReservationFailed──▶ REJECTED (terminal)    ShipmentDispatched
                                                                        ▼
                               DELIVERED (terminal) ◀──ShipmentDelivered── SHIPPED

* An event ahead of its predecessors (``ShipmentRequested`` before
  ``InventoryReserved``, ``ShipmentDelivered`` before ``ShipmentDispatched``...):
  each step implies the ones before it (shipping only ever follows a reservation,
  a delivery a dispatch), so the order walks the path up to the event's status in
  one go and every change is announced, in order, exactly as if the events had
  arrived in order. The late ones change nothing.
* A reserved order (CONFIRMED, SHIPPING) is never rejected, and a REJECTED order
  never confirms or ships: inventory publishes either a reservation or a failure
  for an order, never both, and shipping acts only on a reservation. Such an event
  means another service broke its contract; it is ignored, and reported as a
  conflict for an operator, rather than moving the order backwards.
* An event that brings nothing new (a duplicate, a late one) changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from common.events import (
    InventoryReservationFailed,
    InventoryReserved,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
    ShortItem,
)
from orders.domain.model import OrderStatus

StatusEvent = (
    InventoryReserved
    | InventoryReservationFailed
    | ShipmentRequested
    | ShipmentDispatched
    | ShipmentDelivered
)

# The forward path; REJECTED stands beside it, reachable from PENDING only.
_PATH = (
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.SHIPPING,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
)
_TARGETS: dict[type[StatusEvent], OrderStatus] = {
    InventoryReserved: OrderStatus.CONFIRMED,
    InventoryReservationFailed: OrderStatus.REJECTED,
    ShipmentRequested: OrderStatus.SHIPPING,
    ShipmentDispatched: OrderStatus.SHIPPED,
    ShipmentDelivered: OrderStatus.DELIVERED,
}


@dataclass(frozen=True)
class OrderState:
    """What the status rules need of an order (read under a row lock)."""

    order_id: uuid.UUID
    customer_id: str
    status: OrderStatus
    rejection_reason: str | None = None


@dataclass(frozen=True)
class Transition:
    previous: OrderStatus
    status: OrderStatus


@dataclass(frozen=True)
class StatusDecision:
    transitions: tuple[Transition, ...] = ()
    # Why the event was refused when it contradicts the order's status (a bug upstream).
    conflict: str | None = None

    @property
    def final(self) -> OrderStatus | None:
        return self.transitions[-1].status if self.transitions else None


def target_of(event: StatusEvent) -> OrderStatus:
    """The status an event asks for."""
    return _TARGETS[type(event)]


def decide(current: OrderStatus, target: OrderStatus) -> StatusDecision:
    """The transitions that take an order from ``current`` towards ``target``."""
    if target is OrderStatus.REJECTED:
        if current is OrderStatus.PENDING:
            return StatusDecision((Transition(current, target),))
        if current is OrderStatus.REJECTED:
            return StatusDecision()
        return StatusDecision(conflict=f"a {current.value} order cannot be rejected: its stock was reserved")
    if current is OrderStatus.REJECTED:
        return StatusDecision(conflict=f"a REJECTED order cannot become {target.value}")
    here, there = _PATH.index(current), _PATH.index(target)
    # range() is empty when the order is already at or past the target: never backwards.
    return StatusDecision(tuple(Transition(_PATH[i], _PATH[i + 1]) for i in range(here, there)))


def rejection_reason(short_items: list[ShortItem]) -> str:
    """A reason a customer can read, naming every item that lacked stock."""
    parts = [f"{item.sku} (ordered {item.requested}, {item.available} available)" for item in short_items]
    return f"Not enough stock for {', '.join(parts)}."
