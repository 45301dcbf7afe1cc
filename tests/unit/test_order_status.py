"""The order status rules and the status use case, on in-memory fakes (no sockets)."""

from __future__ import annotations

import copy
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Self

import pytest

from common.events import (
    DomainEvent,
    EventMetadata,
    InventoryReservationFailed,
    InventoryReserved,
    OrderStatusChanged,
    ReservedItem,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
    ShippingAddress,
    ShortItem,
)
from orders.domain.model import OrderNotCancellable, OrderNotFound, OrderStatus
from orders.domain.status import OrderState, Transition, decide, rejection_reason, request_cancellation
from orders.usecases import STATUS_CONSUMER, apply_status_event
from tests.unit.fakes import FakeOutbox, FakeProcessed

P, C, S, R = OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.SHIPPING, OrderStatus.REJECTED
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ORDER_ID = uuid.UUID("00000000-0000-4000-8000-00000000000a")
ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB"
)
ITEMS = [ReservedItem(sku="SKU-1", quantity=2)]


# --- the rules, as a table ---------------------------------------------------------

#  current, event's target, transitions, conflict?
RULES = [
    (P, C, [(P, C)], False),
    (P, S, [(P, C), (C, S)], False),  # shipment before reservation: passes through CONFIRMED
    (P, R, [(P, R)], False),
    (C, C, [], False),  # duplicate
    (C, S, [(C, S)], False),
    (C, R, [], True),  # a reserved order is never rejected
    (S, C, [], False),  # late reservation
    (S, S, [], False),  # duplicate
    (S, R, [], True),
    (R, C, [], True),  # REJECTED is terminal
    (R, S, [], True),
    (R, R, [], False),  # duplicate
    (S, OrderStatus.SHIPPED, [(S, OrderStatus.SHIPPED)], False),
    (OrderStatus.SHIPPED, OrderStatus.DELIVERED, [(OrderStatus.SHIPPED, OrderStatus.DELIVERED)], False),
    (OrderStatus.DELIVERED, OrderStatus.SHIPPED, [], False),  # a late dispatch
    (OrderStatus.DELIVERED, S, [], False),
    (OrderStatus.DELIVERED, R, [], True),  # DELIVERED is terminal
    (R, OrderStatus.SHIPPED, [], True),
    # --- a cancellation under way: shipping's answer decides, nothing else moves the order
    (K := OrderStatus.CANCELLING, X := OrderStatus.CANCELLED, [(K, X)], False),
    (K, C, [], False),  # a late reservation
    (K, S, [], False),  # a late shipment request
    (K, R, [], False),  # a reservation failure after the cancellation: it ends CANCELLED
    (K, OrderStatus.SHIPPED, [(K, OrderStatus.SHIPPED)], False),  # the goods had left
    (
        K,
        OrderStatus.DELIVERED,
        [(K, OrderStatus.SHIPPED), (OrderStatus.SHIPPED, OrderStatus.DELIVERED)],
        False,
    ),
    (X, X, [], False),  # duplicate
    (X, C, [], False),  # late events for a cancelled order change nothing
    (X, S, [], False),
    (X, R, [], False),
    (X, OrderStatus.SHIPPED, [], True),  # goods leaving a cancelled order: shipping broke its word
    (X, OrderStatus.DELIVERED, [], True),
    (P, X, [], True),  # ShipmentCancelled with no cancellation asked for
    (S, X, [], True),
    (OrderStatus.SHIPPED, X, [], True),
    (R, X, [], True),
]


@pytest.mark.parametrize(
    ("current", "target", "steps", "conflict"), RULES, ids=[f"{c.value}+{t.value}" for c, t, *_ in RULES]
)
def test_status_rules(current, target, steps, conflict):
    decision = decide(current, target)
    assert decision.transitions == tuple(Transition(a, b) for a, b in steps)
    assert (decision.conflict is not None) is conflict
    assert decision.final == (steps[-1][1] if steps else None)


@pytest.mark.parametrize("current", [P, C, S])
def test_a_cancellation_is_accepted_before_the_goods_leave(current):
    assert request_cancellation(current) == Transition(current, OrderStatus.CANCELLING)


@pytest.mark.parametrize("current", [OrderStatus.CANCELLING, OrderStatus.CANCELLED])
def test_a_repeated_cancellation_changes_nothing(current):
    assert request_cancellation(current) is None


@pytest.mark.parametrize("current", [OrderStatus.SHIPPED, OrderStatus.DELIVERED, R])
def test_a_cancellation_is_refused_once_the_goods_left_or_the_order_was_rejected(current):
    with pytest.raises(OrderNotCancellable) as refused:
        request_cancellation(current)
    assert refused.value.status is current


def test_the_rejection_reason_names_every_short_item():
    reason = rejection_reason(
        [ShortItem(sku="SKU-1", requested=3, available=1), ShortItem(sku="SKU-2", requested=2, available=0)]
    )
    assert reason == "Not enough stock for SKU-1 (ordered 3, 1 available), SKU-2 (ordered 2, 0 available)."


# --- fakes -------------------------------------------------------------------------


@dataclass
class Store:
    orders: dict[uuid.UUID, OrderState] = field(default_factory=dict)
    updated_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    outbox: list[DomainEvent] = field(default_factory=list)
    processed: set[tuple[str, uuid.UUID]] = field(default_factory=set)


class FakeOrders:
    def __init__(self, store: Store) -> None:
        self._s = store

    def lock_state(self, order_id: uuid.UUID) -> OrderState | None:
        return self._s.orders.get(order_id)

    def set_status(self, order_id: uuid.UUID, status: OrderStatus, reason: str | None, at: datetime) -> None:
        old = self._s.orders[order_id]
        self._s.orders[order_id] = OrderState(old.order_id, old.customer_id, status, reason)
        self._s.updated_at[order_id] = at


class FakeUnitOfWork:
    """Works on a copy of the store; ``commit()`` makes the copy the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> Self:
        self._working = copy.deepcopy(self.store)
        self.orders = FakeOrders(self._working)
        self.outbox = FakeOutbox(self._working.outbox)
        self.processed = FakeProcessed(self._working.processed)
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def commit(self) -> None:
        self.store.__dict__.update(self._working.__dict__)


@pytest.fixture
def store() -> Store:
    return Store(orders={ORDER_ID: OrderState(ORDER_ID, "customer-1", P)})


@pytest.fixture
def uow(store: Store) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


def metadata() -> EventMetadata:
    return EventMetadata.new("corr-1", causation_id="cause-0")


def reserved(order_id: uuid.UUID = ORDER_ID) -> InventoryReserved:
    return InventoryReserved(
        order_id=order_id,
        customer_id="customer-1",
        items=ITEMS,
        shipping_address=ADDRESS,
        metadata=metadata(),
    )


def failed() -> InventoryReservationFailed:
    return InventoryReservationFailed(
        order_id=ORDER_ID,
        customer_id="customer-1",
        reason="insufficient stock",
        short_items=[ShortItem(sku="SKU-1", requested=2, available=1)],
        metadata=metadata(),
    )


def shipment() -> ShipmentRequested:
    return ShipmentRequested(
        order_id=ORDER_ID,
        shipment_id=uuid.uuid4(),
        items=ITEMS,
        shipping_address=ADDRESS,
        metadata=metadata(),
    )


def changes(store: Store) -> list[tuple[str, str]]:
    return [(e.previous_status, e.status) for e in store.outbox if isinstance(e, OrderStatusChanged)]


# --- the use case ------------------------------------------------------------------


def test_inventory_reserved_confirms_and_announces_it(uow, store):
    event = reserved()

    update = apply_status_event(event, uow, clock=lambda: T0)

    assert update.status is C and not update.duplicate and update.conflict is None
    assert store.orders[ORDER_ID].status is C and store.updated_at[ORDER_ID] == T0
    [change] = store.outbox
    assert isinstance(change, OrderStatusChanged)
    assert (change.order_id, change.customer_id) == (ORDER_ID, "customer-1")
    assert (change.previous_status, change.status, change.rejection_reason) == ("PENDING", "CONFIRMED", None)
    # caused by the event it follows from, in the same conversation
    assert change.metadata.causation_id == str(event.metadata.event_id)
    assert change.metadata.correlation_id == "corr-1"
    assert change.metadata.event_id != event.metadata.event_id
    assert (STATUS_CONSUMER, event.metadata.event_id) in store.processed


def test_a_failed_reservation_rejects_with_a_readable_reason(uow, store):
    apply_status_event(failed(), uow)

    assert store.orders[ORDER_ID].status is R
    assert store.orders[ORDER_ID].rejection_reason == "Not enough stock for SKU-1 (ordered 2, 1 available)."
    [change] = store.outbox
    assert isinstance(change, OrderStatusChanged)
    assert change.status == "REJECTED" and change.rejection_reason == store.orders[ORDER_ID].rejection_reason


def test_a_duplicate_event_changes_nothing(uow, store):
    event = reserved()
    apply_status_event(event, uow)

    again = apply_status_event(event, uow)

    assert again.duplicate and again.changes == []
    assert changes(store) == [("PENDING", "CONFIRMED")]


@pytest.mark.parametrize("arrival", sorted(set(itertools.permutations(["reserved", "shipment"] * 2))))
def test_any_arrival_order_of_reserved_and_shipment_ends_shipping_with_two_changes(uow, store, arrival):
    events = {"reserved": reserved(), "shipment": shipment()}  # each delivered twice

    for name in arrival:
        apply_status_event(events[name], uow)

    assert store.orders[ORDER_ID].status is S
    assert changes(store) == [("PENDING", "CONFIRMED"), ("CONFIRMED", "SHIPPING")]


def test_a_contradicting_event_is_handled_but_changes_nothing(uow, store):
    apply_status_event(reserved(), uow)

    late_failure = failed()
    update = apply_status_event(late_failure, uow)

    assert update.conflict and update.status is C and update.changes == []
    assert store.orders[ORDER_ID].status is C and store.orders[ORDER_ID].rejection_reason is None
    # marked processed, so it is not retried for nothing
    assert (STATUS_CONSUMER, late_failure.metadata.event_id) in store.processed


def test_an_event_for_an_unknown_order_raises_and_leaves_no_mark(uow, store):
    event = reserved(order_id=uuid.uuid4())

    with pytest.raises(OrderNotFound):
        apply_status_event(event, uow)

    assert store.processed == set() and store.outbox == []


def dispatched_event() -> ShipmentDispatched:
    return ShipmentDispatched(
        order_id=ORDER_ID,
        shipment_id=uuid.uuid4(),
        items=ITEMS,
        carrier="DHL",
        tracking_number="T-1",
        dispatched_at=T0,
        metadata=metadata(),
    )


def delivered_event() -> ShipmentDelivered:
    return ShipmentDelivered(
        order_id=ORDER_ID, shipment_id=uuid.uuid4(), delivered_at=T0, metadata=metadata()
    )


ALL_FIVE = ["reserved", "shipment", "dispatched", "delivered"]


@pytest.mark.parametrize("seed", range(12))
def test_any_arrival_order_of_the_whole_life_ends_delivered_with_each_change_once(uow, store, seed):
    import random

    events = {
        "reserved": reserved(),
        "shipment": shipment(),
        "dispatched": dispatched_event(),
        "delivered": delivered_event(),
    }
    arrival = ALL_FIVE * 2
    random.Random(seed).shuffle(arrival)

    for name in arrival:
        apply_status_event(events[name], uow)

    assert store.orders[ORDER_ID].status is OrderStatus.DELIVERED
    assert changes(store) == [
        ("PENDING", "CONFIRMED"),
        ("CONFIRMED", "SHIPPING"),
        ("SHIPPING", "SHIPPED"),
        ("SHIPPED", "DELIVERED"),
    ]
