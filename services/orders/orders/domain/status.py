"""How an order's status follows the inventory and shipping events, and a cancellation.

This module is the one place where the order's transitions are decided. The status
only ever moves forward, whatever order the events arrive in:

    PENDING ──InventoryReserved──▶ CONFIRMED ──ShipmentRequested──▶ SHIPPING
       │                                                                │
       └──InventoryReservationFailed──▶ REJECTED (terminal)    ShipmentDispatched
                                                                        ▼
                               DELIVERED (terminal) ◀──ShipmentDelivered── SHIPPED
                                                                        ▲
    PENDING | CONFIRMED | SHIPPING ──cancel (API)──▶ CANCELLING ────────┘
                                                       │   ShipmentDispatched, or
                                                       │   ShipmentCancellationRefused
                                    ShipmentCancelled  ▼   (the goods had left)
                                                   CANCELLED (terminal)

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

Cancellation (the shipping service decides, since only it knows whether goods left):

* Asked for (``request_cancellation``) while PENDING, CONFIRMED or SHIPPING: the
  order becomes CANCELLING. Asked again while CANCELLING or CANCELLED: nothing
  changes. SHIPPED, DELIVERED or REJECTED: refused (``OrderNotCancellable``).
* While CANCELLING, a late ``InventoryReserved``, ``ShipmentRequested`` or
  ``InventoryReservationFailed`` changes nothing: the order waits for shipping's
  answer. ``ShipmentCancelled`` ends it CANCELLED; ``ShipmentDispatched`` or
  ``ShipmentCancellationRefused`` (the goods had left: shipping refuses only then)
  moves it on to SHIPPED, and a ``ShipmentDelivered`` to DELIVERED.
* Hence the races: a cancellation racing a reservation failure ends in whichever
  the orders service applied first. Failure first: REJECTED, and the cancellation
  is refused (409). Cancellation first: CANCELLED (nothing was reserved, so shipping
  has no shipment and announces ``ShipmentCancelled``; the customer gets the
  rejection email and the cancellation email). A cancellation racing a dispatch
  ends in whichever shipping applied first, under the shipment's row lock:
  dispatched first, SHIPPED (refused); cancelled first, CANCELLED (the dispatch
  gets a 409). Never both.
* A CANCELLED order is final: late reservations, failures and shipment requests
  change nothing; goods leaving it (``ShipmentDispatched``, ``ShipmentDelivered``)
  would mean shipping broke its word, and are reported as a conflict. So is a
  ``ShipmentCancelled`` for an order that never asked to be cancelled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from common.events import (
    InventoryReservationFailed,
    InventoryReserved,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
    ShortItem,
)
from orders.domain.model import OrderNotCancellable, OrderStatus

StatusEvent = (
    InventoryReserved
    | InventoryReservationFailed
    | ShipmentRequested
    | ShipmentDispatched
    | ShipmentDelivered
    | ShipmentCancelled
    | ShipmentCancellationRefused
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
    ShipmentCancelled: OrderStatus.CANCELLED,
    # Shipping refuses only when the goods had left: the refusal implies the dispatch.
    ShipmentCancellationRefused: OrderStatus.SHIPPED,
}
# Before the goods leave, a cancellation may still stop them.
CANCELLABLE = frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.SHIPPING})


@dataclass(frozen=True)
class OrderState:
    """What the status rules need of an order (read under a row lock)."""

    order_id: uuid.UUID
    customer_id: str
    status: OrderStatus
    rejection_reason: str | None = None
    cancellation_reason: str | None = None


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


def request_cancellation(current: OrderStatus) -> Transition | None:
    """The step a cancellation asks for: to CANCELLING; None when the order is already
    CANCELLING or CANCELLED; ``OrderNotCancellable`` once the goods left or it was rejected."""
    if current in CANCELLABLE:
        return Transition(current, OrderStatus.CANCELLING)
    if current in (OrderStatus.CANCELLING, OrderStatus.CANCELLED):
        return None
    raise OrderNotCancellable(current)


def decide(current: OrderStatus, target: OrderStatus) -> StatusDecision:
    """The transitions that take an order from ``current`` towards ``target``."""
    if target is OrderStatus.CANCELLED:
        if current is OrderStatus.CANCELLING:
            return StatusDecision((Transition(current, target),))
        if current is OrderStatus.CANCELLED:
            return StatusDecision()
        return StatusDecision(
            conflict=f"a {current.value} order cannot be cancelled: no cancellation is under way"
        )
    if current is OrderStatus.CANCELLED:
        if target in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            return StatusDecision(
                conflict=f"a CANCELLED order cannot become {target.value}: its shipment was cancelled"
            )
        return StatusDecision()
    if current is OrderStatus.CANCELLING:
        if target not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            return StatusDecision()  # shipping's answer decides, whatever else arrives
        # The goods left before the cancellation reached shipping: on along the path.
        left = (Transition(current, OrderStatus.SHIPPED),)
        return StatusDecision(left + decide(OrderStatus.SHIPPED, target).transitions)
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
