"""Use cases of the inventory service: plain functions of a command or event and ports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCancelled,
    OrderCreated,
    ReservedItem,
    ShipmentDispatched,
    ShortItem,
)
from inventory.domain.commands import SetStock
from inventory.domain.model import (
    Outcome,
    ReservationNotFound,
    Settlement,
    Shortage,
    StockBelowReserved,
    StockLevel,
    StockNotFound,
    requested_quantities,
    shortages,
)
from inventory.domain.ports import UnitOfWork

CONSUMER = "inventory"  # this service's name in eventing.processed_events


class Handled(StrEnum):
    RESERVED = "RESERVED"
    FAILED = "FAILED"
    DUPLICATE_EVENT = "DUPLICATE_EVENT"  # this eventId was handled before
    ORDER_ALREADY_DECIDED = "ORDER_ALREADY_DECIDED"  # another event for the order was
    CONSUMED = "CONSUMED"  # the dispatched order's reservation left the stock
    ALREADY_SETTLED = "ALREADY_SETTLED"  # its reservation was consumed or released before
    RELEASED = "RELEASED"  # the cancelled order's reservation went back to the stock
    CANCELLED_UNRESERVED = "CANCELLED_UNRESERVED"  # cancelled with nothing reserved (none ever will be)


@dataclass(frozen=True)
class ReservationResult:
    handled: Handled
    published: InventoryReserved | InventoryReservationFailed | None = None
    outbox_ids: tuple[int, ...] = ()  # rows to publish right after the commit


def reserve_stock(event: OrderCreated, uow: UnitOfWork) -> ReservationResult:
    """Reserve every item of the order, or none, and announce which, in one transaction.

    Idempotent twice over: on the event's ``eventId`` (a redelivery changes nothing),
    and on the order (an ``OrderCreated`` re-sent under a new ``eventId`` finds the
    order decided and changes nothing either). Stock rows are locked in SKU order,
    so concurrent orders for the same SKUs queue up instead of deadlocking or
    overselling.
    """
    with uow:
        if not uow.processed.mark(CONSUMER, event.metadata.event_id):
            return ReservationResult(Handled.DUPLICATE_EVENT)

        requested = requested_quantities((item.sku, item.quantity) for item in event.items)
        levels = uow.stock.lock(list(requested))
        short = shortages(requested, levels)
        outcome = Outcome.FAILED if short else Outcome.RESERVED
        if not uow.reservations.decide(event.order_id, outcome, event.metadata.event_id):
            uow.commit()  # remembers this eventId; the stock is left as it was
            return ReservationResult(Handled.ORDER_ALREADY_DECIDED)

        follow_up: InventoryReserved | InventoryReservationFailed
        if short:
            follow_up = _reservation_failed(event, short)
        else:
            uow.reservations.add(event.order_id, requested)
            uow.stock.add_reserved(requested)
            follow_up = InventoryReserved(
                order_id=event.order_id,
                customer_id=event.customer_id,
                items=[ReservedItem(sku=sku, quantity=q) for sku, q in requested.items()],
                shipping_address=event.shipping_address,
                metadata=event.metadata.caused(),
            )
        outbox_id = uow.outbox.add(follow_up)
        uow.commit()
    return ReservationResult(Handled(outcome.value), follow_up, (outbox_id,))


def _reservation_failed(event: OrderCreated, short: list[Shortage]) -> InventoryReservationFailed:
    names = ", ".join(f"{s.sku} (requested {s.requested}, available {s.available})" for s in short)
    return InventoryReservationFailed(
        order_id=event.order_id,
        customer_id=event.customer_id,
        reason=f"insufficient stock: {names}"[:1000],
        short_items=[ShortItem(sku=s.sku, requested=s.requested, available=s.available) for s in short],
        metadata=event.metadata.caused(),
    )


def consume_reservation(event: ShipmentDispatched, uow: UnitOfWork) -> Handled:
    """The goods left: the order's reserved quantities leave ``on_hand`` and ``reserved``.

    Once per order, in one transaction: the event's ``eventId`` marked, the order's
    settlement recorded (its primary key admits one, so a redelivery, a new
    ``eventId`` for the same dispatch, or a racing release finds it and changes
    nothing), the stock rows locked in SKU order, then both columns lowered in one
    statement. Goods cannot leave unreserved (shipping acts only on
    ``InventoryReserved``, which follows the reservation's commit), so a missing
    reservation raises ``ReservationNotFound``: the event is retried, then
    dead-lettered for an operator.
    """
    with uow:
        if not uow.processed.mark(CONSUMER, event.metadata.event_id):
            return Handled.DUPLICATE_EVENT
        if not uow.reservations.settle(event.order_id, Settlement.CONSUMED, event.metadata.event_id):
            uow.commit()
            return Handled.ALREADY_SETTLED
        quantities = uow.reservations.quantities(event.order_id)
        if not quantities:
            raise ReservationNotFound(event.order_id)
        uow.stock.lock(list(quantities))
        uow.stock.consume(event.order_id)
        uow.commit()
    return Handled.CONSUMED


@dataclass(frozen=True)
class ReleaseResult:
    handled: Handled
    published: InventoryReleased | None = None
    outbox_ids: tuple[int, ...] = ()


def release_reservation(event: OrderCancelled, uow: UnitOfWork) -> ReleaseResult:
    """The order was cancelled: give its reservation back, once, and announce
    ``InventoryReleased``, in one transaction.

    * ``OrderCancelled`` before ``OrderCreated``: a CANCELLED decision takes the
      order's one decision (its primary key), so the late ``OrderCreated`` reserves
      nothing. A reservation racing it waits on that key, then finds it taken.
    * Reserved: the RELEASED settlement (its primary key admits one end per order,
      so a redelivery, or a racing dispatch's consumption, finds it and changes
      nothing), the stock rows locked in SKU order, ``reserved`` lowered in one
      statement.
    * Nothing was reserved (the reservation failed): the cancellation is recorded,
      nothing is announced.
    """
    with uow:
        if not uow.processed.mark(CONSUMER, event.metadata.event_id):
            return ReleaseResult(Handled.DUPLICATE_EVENT)
        if uow.reservations.decide(event.order_id, Outcome.CANCELLED, event.metadata.event_id):
            uow.commit()
            return ReleaseResult(Handled.CANCELLED_UNRESERVED)
        if not uow.reservations.settle(event.order_id, Settlement.RELEASED, event.metadata.event_id):
            uow.commit()
            return ReleaseResult(Handled.ALREADY_SETTLED)
        quantities = uow.reservations.quantities(event.order_id)
        if not quantities:
            uow.commit()
            return ReleaseResult(Handled.CANCELLED_UNRESERVED)
        uow.stock.lock(list(quantities))
        uow.stock.release(event.order_id)
        released = InventoryReleased(
            order_id=event.order_id,
            items=[ReservedItem(sku=sku, quantity=q) for sku, q in sorted(quantities.items())],
            metadata=event.metadata.caused(),
        )
        outbox_id = uow.outbox.add(released)
        uow.commit()
    return ReleaseResult(Handled.RELEASED, released, (outbox_id,))


def get_stock(sku: str, uow: UnitOfWork) -> StockLevel:
    with uow:
        level = uow.stock.get(sku)
    if level is None:
        raise StockNotFound(sku)
    return level


def set_stock(cmd: SetStock, uow: UnitOfWork) -> StockLevel:
    """Create the SKU's stock, or count it again; never below what is reserved."""
    with uow:
        current = uow.stock.lock([cmd.sku]).get(cmd.sku)
        if current is not None:
            current.with_on_hand(cmd.on_hand)  # raises StockBelowReserved
        level = uow.stock.set_on_hand(cmd.sku, cmd.on_hand)
        if level is None:
            # A concurrent PUT created the row and a reservation followed, in between.
            latest = uow.stock.get(cmd.sku)
            raise StockBelowReserved(cmd.sku, cmd.on_hand, latest.reserved if latest else 0)
        uow.commit()
    return level
