"""Use cases of the orders service: plain functions of a command and ports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.events import (
    EventMetadata,
    InventoryReservationFailed,
    OrderCancellationRequested,
    OrderCancelled,
    OrderCreated,
    OrderCreatedItem,
    OrderStatusChanged,
    ShippingAddress,
)
from orders.domain.commands import CancelOrder, PlaceOrder, UpsertProduct
from orders.domain.model import (
    DomainError,
    IdempotencyKeyReused,
    Order,
    OrderNotFound,
    OrderStatus,
    Product,
    ProductNotFound,
)
from orders.domain.ports import StatusUnitOfWork, UnitOfWork
from orders.domain.status import (
    StatusEvent,
    decide,
    rejection_reason,
    request_cancellation,
    target_of,
)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PlacedOrder:
    order: Order
    # Outbox rows written by this call; empty when an earlier request made the order.
    outbox_ids: list[int] = field(default_factory=list)


def place_order(cmd: PlaceOrder, uow: UnitOfWork, clock: Clock = _utcnow) -> PlacedOrder:
    """Store a new order and its ``OrderCreated`` in one transaction.

    With an ``Idempotency-Key``: the same key and request give back the first order
    (however concurrent the duplicates: the unique key makes the later ones wait for
    the first and then see it); the same key with another request is refused. The
    key is looked up only when the insert conflicts (or pricing fails), so a first
    request, the common case, pays no extra query for it.
    """
    with uow:
        catalog = uow.products.get_many(sorted({sku for sku, _ in cmd.quantities}))
        try:
            order = Order.price(
                order_id=cmd.order_id,
                customer_id=cmd.customer_id,
                customer_email=cmd.customer_email,
                quantities=cmd.quantities,
                catalog=catalog,
                shipping_address=cmd.shipping_address,
                correlation_id=cmd.correlation_id,
                now=clock(),
                idempotency_key=cmd.idempotency_key,
                request_hash=cmd.request_hash,
            )
        except DomainError:
            # A replay of a request that succeeded before still gets its order (or,
            # with another body, the 409), whatever the catalog says now.
            if cmd.idempotency_key is not None:
                earlier = uow.orders.get_by_idempotency_key(cmd.customer_id, cmd.idempotency_key)
                if earlier is not None:
                    return PlacedOrder(_same_request(earlier, cmd))
            raise
        if not uow.orders.add(order):
            # Lost a race on the key, or this is a retry of a transaction whose
            # commit went through before the connection dropped.
            existing = uow.orders.get(cmd.order_id)
            if existing is None and cmd.idempotency_key is not None:
                existing = uow.orders.get_by_idempotency_key(cmd.customer_id, cmd.idempotency_key)
            if existing is None:
                raise RuntimeError("order insert conflicted but no order was found")
            return PlacedOrder(_same_request(existing, cmd))

        outbox_id = uow.outbox.add(order_created(order))
        uow.commit()
        return PlacedOrder(order, [outbox_id])


def _same_request(order: Order, cmd: PlaceOrder) -> Order:
    if order.customer_id != cmd.customer_id or order.request_hash != cmd.request_hash:
        raise IdempotencyKeyReused()
    return order


def order_created(order: Order, causation_id: str | None = None) -> OrderCreated:
    return OrderCreated(
        order_id=order.order_id,
        customer_id=order.customer_id,
        customer_email=order.customer_email,
        items=[
            OrderCreatedItem(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
            for line in order.lines
        ],
        total=order.total,
        currency=order.currency,
        shipping_address=ShippingAddress.model_validate(order.shipping_address),
        metadata=EventMetadata.new(order.correlation_id, causation_id),
    )


def get_order(order_id: uuid.UUID, customer_id: str | None, uow: UnitOfWork) -> Order:
    """The customer's own order (``customer_id``), or any order (``None``: an admin);
    someone else's is as unknown as a missing one."""
    with uow:
        order = uow.orders.get(order_id)
    if order is None or (customer_id is not None and order.customer_id != customer_id):
        raise OrderNotFound(str(order_id))
    return order


def list_orders(
    customer_id: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    uow: UnitOfWork,
    *,
    status: OrderStatus | None = None,
) -> tuple[list[Order], tuple[datetime, uuid.UUID] | None]:
    """One page of the customer's orders (``None``: every customer's, for an admin), only
    those in ``status`` if given, newest first, and where the next page starts."""
    with uow:
        page = uow.orders.list_recent(customer_id, status, limit + 1, after)
    has_more = len(page) > limit
    page = page[:limit]
    cursor = (page[-1].created_at, page[-1].order_id) if has_more and page else None
    return page, cursor


@dataclass
class CancellationResult:
    order: Order
    # True when this call moved the order to CANCELLING (202); False when it already was
    # CANCELLING or CANCELLED (200, the order as it is).
    accepted: bool
    outbox_ids: list[int] = field(default_factory=list)


def cancel_order(cmd: CancelOrder, uow: UnitOfWork, clock: Clock = _utcnow) -> CancellationResult:
    """Ask for the order's cancellation: CANCELLING, ``OrderStatusChanged`` and
    ``OrderCancellationRequested`` in one transaction; shipping then decides.

    The order row is locked first, so a cancellation racing a status event sees its
    outcome (the rules are in ``orders.domain.status``). Someone else's order is as
    unknown as a missing one; a repeat changes nothing; a SHIPPED, DELIVERED or
    REJECTED order raises ``OrderNotCancellable``.
    """
    with uow:
        state = uow.orders.lock_state(cmd.order_id)
        if state is None or (cmd.customer_id is not None and state.customer_id != cmd.customer_id):
            raise OrderNotFound(str(cmd.order_id))
        step = request_cancellation(state.status)
        if step is None:
            order = uow.orders.get(cmd.order_id)
            assert order is not None  # locked above
            return CancellationResult(order, accepted=False)
        uow.orders.mark_cancelling(cmd.order_id, cmd.reason, clock())
        order = uow.orders.get(cmd.order_id)
        assert order is not None
        changed = OrderStatusChanged(
            order_id=order.order_id,
            customer_id=order.customer_id,
            previous_status=step.previous.value,
            status=step.status.value,
            cancellation_reason=cmd.reason,
            metadata=EventMetadata.new(order.correlation_id),
        )
        requested = OrderCancellationRequested(
            order_id=order.order_id,
            customer_id=order.customer_id,
            reason=cmd.reason,
            metadata=changed.metadata.caused(),
        )
        outbox_ids = [uow.outbox.add(changed), uow.outbox.add(requested)]
        uow.commit()
    return CancellationResult(order, accepted=True, outbox_ids=outbox_ids)


def get_product(sku: str, uow: UnitOfWork) -> Product:
    with uow:
        product = uow.products.get(sku)
    if product is None:
        raise ProductNotFound(sku)
    return product


def list_products(limit: int, after: str | None, uow: UnitOfWork) -> tuple[list[Product], str | None]:
    """One page of the catalog by SKU, and the SKU the next page starts after."""
    with uow:
        page = uow.products.list_page(limit + 1, after)
    has_more = len(page) > limit
    page = page[:limit]
    return page, (page[-1].sku if has_more and page else None)


def upsert_product(cmd: UpsertProduct, uow: UnitOfWork) -> Product:
    with uow:
        product = uow.products.upsert(Product(sku=cmd.sku, name=cmd.name, unit_price=cmd.unit_price))
        uow.commit()
    return product


# --- order status (OrderStatusFunction) ---

STATUS_CONSUMER = "order-status"


@dataclass(frozen=True)
class StatusUpdate:
    order_id: uuid.UUID
    status: OrderStatus | None  # None when the event was a duplicate (not looked at)
    changes: list[OrderStatusChanged] = field(default_factory=list)
    duplicate: bool = False
    conflict: str | None = None
    outbox_ids: tuple[int, ...] = ()  # rows to publish right after the commit


def apply_status_event(event: StatusEvent, uow: StatusUnitOfWork, clock: Clock = _utcnow) -> StatusUpdate:
    """Move the order's status as ``event`` says, if that moves it forward.

    One transaction: the processed mark on ``metadata.eventId`` (a concurrent
    duplicate waits on it, then does nothing), the order row locked, the status
    written and every ``OrderStatusChanged`` put in the outbox, each caused by
    ``event``. The rules are in ``orders.domain.status``. An unknown order raises
    ``OrderNotFound``: orders are committed before ``OrderCreated`` is published, so
    no event can precede its order; the event is retried and then dead-lettered.
    """
    with uow:
        if not uow.processed.mark(STATUS_CONSUMER, event.metadata.event_id):
            return StatusUpdate(event.order_id, None, duplicate=True)
        order = uow.orders.lock_state(event.order_id)
        if order is None:
            raise OrderNotFound(str(event.order_id))
        decision = decide(order.status, target_of(event))
        reason = (
            rejection_reason(event.short_items)
            if isinstance(event, InventoryReservationFailed)
            else order.rejection_reason
        )
        changes = [
            OrderStatusChanged(
                order_id=order.order_id,
                customer_id=order.customer_id,
                previous_status=step.previous.value,
                status=step.status.value,
                rejection_reason=reason if step.status is OrderStatus.REJECTED else None,
                cancellation_reason=(
                    order.cancellation_reason if step.status is OrderStatus.CANCELLED else None
                ),
                metadata=event.metadata.caused(),
            )
            for step in decision.transitions
        ]
        outbox_ids = tuple(uow.outbox.add(change) for change in changes)
        if decision.final is OrderStatus.CANCELLED:
            # Inventory releases the stock and notifications writes to the customer on this.
            outbox_ids += (
                uow.outbox.add(
                    OrderCancelled(
                        order_id=order.order_id,
                        customer_id=order.customer_id,
                        cancellation_reason=order.cancellation_reason,
                        metadata=event.metadata.caused(),
                    )
                ),
            )
        final = decision.final
        if final is not None:
            uow.orders.set_status(order.order_id, final, reason, clock())
        # Committed even when nothing changed: the event is handled, not to be retried.
        uow.commit()
    return StatusUpdate(
        order.order_id, final or order.status, changes, conflict=decision.conflict, outbox_ids=outbox_ids
    )
