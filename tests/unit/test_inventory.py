"""Inventory use cases on in-memory fakes: no database, no sockets."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from common.events import (
    DomainEvent,
    EventMetadata,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCreated,
    OrderCreatedItem,
    ReservedItem,
    ShipmentDispatched,
    ShippingAddress,
)
from common.money import Money
from inventory.domain.commands import SetStock
from inventory.domain.model import (
    Outcome,
    ReservationNotFound,
    Settlement,
    StockBelowReserved,
    StockLevel,
    StockNotFound,
)
from inventory.usecases import Handled, consume_reservation, get_stock, reserve_stock, set_stock
from tests.unit.fakes import FakeOutbox, FakeProcessed

ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB"
)


class State:
    """What the database would hold."""

    def __init__(self, on_hand: dict[str, int]) -> None:
        self.levels = {sku: StockLevel(sku, n, 0) for sku, n in on_hand.items()}
        self.outcomes: dict[uuid.UUID, Outcome] = {}
        self.lines: dict[uuid.UUID, dict[str, int]] = {}
        self.outbox: list[DomainEvent] = []
        self.processed: set[tuple[str, uuid.UUID]] = set()
        self.settlements: dict[uuid.UUID, Settlement] = {}


class FakeStock:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def lock(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        self._uow.locks.append(sorted(skus))
        levels = self._uow.work.levels
        return {s: levels[s] for s in sorted(skus) if s in levels}

    def get(self, sku: str) -> StockLevel | None:
        return self._uow.work.levels.get(sku)

    def add_reserved(self, quantities: Mapping[str, int]) -> None:
        levels = self._uow.work.levels
        for sku, q in quantities.items():
            level = levels[sku]
            assert level.reserved + q <= level.on_hand, "the CHECK constraint would refuse this"
            levels[sku] = StockLevel(sku, level.on_hand, level.reserved + q)

    def consume(self, order_id: uuid.UUID) -> None:
        levels = self._uow.work.levels
        for sku, q in self._uow.work.lines.get(order_id, {}).items():
            level = levels[sku]
            levels[sku] = StockLevel(sku, level.on_hand - q, level.reserved - q)
            assert 0 <= levels[sku].reserved <= levels[sku].on_hand, "the CHECK constraints would refuse this"

    def set_on_hand(self, sku: str, on_hand: int) -> StockLevel | None:
        levels = self._uow.work.levels
        level = levels.get(sku, StockLevel(sku, 0, 0))
        if level.reserved > on_hand:
            return None
        levels[sku] = StockLevel(sku, on_hand, level.reserved)
        return levels[sku]


class FakeReservations:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def decide(self, order_id: uuid.UUID, outcome: Outcome, event_id: uuid.UUID) -> bool:
        if order_id in self._uow.work.outcomes:
            return False
        self._uow.work.outcomes[order_id] = outcome
        return True

    def add(self, order_id: uuid.UUID, quantities: Mapping[str, int]) -> None:
        self._uow.work.lines[order_id] = dict(quantities)

    def quantities(self, order_id: uuid.UUID) -> dict[str, int]:
        return dict(self._uow.work.lines.get(order_id, {}))

    def settle(self, order_id: uuid.UUID, settlement: Settlement, event_id: uuid.UUID) -> bool:
        if order_id in self._uow.work.settlements:
            return False
        self._uow.work.settlements[order_id] = settlement
        return True


class FakeUnitOfWork:
    """``with`` works on a copy of the committed state; ``commit`` keeps it."""

    def __init__(self, on_hand: dict[str, int] | None = None) -> None:
        self.committed = State(on_hand or {})
        self.work = self.committed
        self.locks: list[list[str]] = []
        self.stock = FakeStock(self)
        self.reservations = FakeReservations(self)
        self.outbox = FakeOutbox(self.work.outbox)
        self.processed = FakeProcessed(self.work.processed)

    def __enter__(self) -> FakeUnitOfWork:
        self.work = copy.deepcopy(self.committed)
        self.outbox = FakeOutbox(self.work.outbox)
        self.processed = FakeProcessed(self.work.processed)
        return self

    def __exit__(self, *args: Any) -> None:
        self.work = self.committed  # anything not committed is dropped

    def commit(self) -> None:
        self.committed = copy.deepcopy(self.work)


def order_created(*items: tuple[str, int], order_id: uuid.UUID | None = None) -> OrderCreated:
    return OrderCreated(
        order_id=order_id or uuid.uuid4(),
        customer_id="customer-1",
        customer_email="ada@example.com",
        items=[OrderCreatedItem(sku=s, quantity=q, unit_price=Money.parse("1.00", "USD")) for s, q in items],
        total=Money(100 * sum(q for _, q in items), "USD"),
        currency="USD",
        shipping_address=ADDRESS,
        metadata=EventMetadata.new("corr-1"),
    )


def test_every_item_in_stock_is_reserved_and_announced():
    # Given stock for both SKUs
    uow = FakeUnitOfWork({"SKU-1": 5, "SKU-2": 1})
    event = order_created(("SKU-2", 1), ("SKU-1", 2))

    # When the order is handled
    result = reserve_stock(event, uow)

    # Then both are reserved and InventoryReserved is in the outbox, caused by the order
    assert result.handled is Handled.RESERVED
    state = uow.committed
    assert state.levels["SKU-1"] == StockLevel("SKU-1", 5, 2)
    assert state.levels["SKU-2"] == StockLevel("SKU-2", 1, 1)
    assert state.lines[event.order_id] == {"SKU-2": 1, "SKU-1": 2}
    assert state.outcomes[event.order_id] is Outcome.RESERVED
    [published] = state.outbox
    assert isinstance(published, InventoryReserved)
    assert published.order_id == event.order_id
    assert published.customer_id == "customer-1"
    assert [(i.sku, i.quantity) for i in published.items] == [("SKU-2", 1), ("SKU-1", 2)]
    assert published.shipping_address == ADDRESS
    assert published.metadata.correlation_id == "corr-1"
    assert published.metadata.causation_id == str(event.metadata.event_id)
    assert published.metadata.event_id != event.metadata.event_id
    # And the rows were locked in SKU order
    assert uow.locks == [["SKU-1", "SKU-2"]]


def test_one_short_item_reserves_nothing_and_names_each_short_item():
    # Given one SKU with too little and one unknown SKU
    uow = FakeUnitOfWork({"SKU-1": 5, "SKU-2": 1})
    event = order_created(("SKU-1", 2), ("SKU-2", 3), ("NOPE", 1))

    # When the order is handled
    result = reserve_stock(event, uow)

    # Then nothing is reserved and the failure names SKU-2 and the unknown SKU
    assert result.handled is Handled.FAILED
    state = uow.committed
    assert {s: lv.reserved for s, lv in state.levels.items()} == {"SKU-1": 0, "SKU-2": 0}
    assert state.lines == {}
    assert state.outcomes[event.order_id] is Outcome.FAILED
    [failed] = state.outbox
    assert isinstance(failed, InventoryReservationFailed)
    assert [(s.sku, s.requested, s.available) for s in failed.short_items] == [
        ("SKU-2", 3, 1),
        ("NOPE", 1, 0),
    ]
    assert "SKU-2" in failed.reason and "NOPE" in failed.reason
    assert failed.metadata.causation_id == str(event.metadata.event_id)


def test_the_same_event_twice_reserves_once():
    uow = FakeUnitOfWork({"SKU-1": 5})
    event = order_created(("SKU-1", 2))

    assert reserve_stock(event, uow).handled is Handled.RESERVED
    assert reserve_stock(event, uow).handled is Handled.DUPLICATE_EVENT

    assert uow.committed.levels["SKU-1"].reserved == 2
    assert len(uow.committed.outbox) == 1


def test_the_same_order_under_a_new_event_id_reserves_once():
    # Given an order already reserved
    uow = FakeUnitOfWork({"SKU-1": 5})
    first = order_created(("SKU-1", 2))
    reserve_stock(first, uow)

    # When OrderCreated for the same order arrives again with a new eventId
    again = first.model_copy(update={"metadata": EventMetadata.new("corr-1")})
    result = reserve_stock(again, uow)

    # Then nothing changes, nothing is published, and the new eventId is remembered
    assert result.handled is Handled.ORDER_ALREADY_DECIDED
    assert uow.committed.levels["SKU-1"].reserved == 2
    assert len(uow.committed.outbox) == 1
    assert ("inventory", again.metadata.event_id) in uow.committed.processed


def test_a_failed_order_stays_failed_when_stock_arrives_later():
    # Given an order that failed for lack of stock
    uow = FakeUnitOfWork({"SKU-1": 1})
    first = order_created(("SKU-1", 2))
    assert reserve_stock(first, uow).handled is Handled.FAILED

    # When stock arrives and the OrderCreated comes again under a new eventId
    set_stock(SetStock("SKU-1", 10), uow)
    again = first.model_copy(update={"metadata": EventMetadata.new("corr-1")})

    # Then the decision stands: an order is never reserved after being rejected
    assert reserve_stock(again, uow).handled is Handled.ORDER_ALREADY_DECIDED
    assert uow.committed.levels["SKU-1"].reserved == 0


def test_a_sku_named_twice_in_one_order_is_summed():
    uow = FakeUnitOfWork({"SKU-1": 3})
    result = reserve_stock(order_created(("SKU-1", 2), ("SKU-1", 2)), uow)
    assert result.handled is Handled.FAILED
    assert isinstance(result.published, InventoryReservationFailed)
    assert [(s.requested, s.available) for s in result.published.short_items] == [(4, 3)]


def test_exactly_the_available_quantity_can_be_reserved():
    uow = FakeUnitOfWork({"SKU-1": 3})
    assert reserve_stock(order_created(("SKU-1", 3)), uow).handled is Handled.RESERVED
    assert reserve_stock(order_created(("SKU-1", 1)), uow).handled is Handled.FAILED
    assert uow.committed.levels["SKU-1"].available == 0


def test_set_stock_creates_then_updates():
    uow = FakeUnitOfWork()
    assert set_stock(SetStock("SKU-1", 4), uow) == StockLevel("SKU-1", 4, 0)
    assert set_stock(SetStock("SKU-1", 7), uow) == StockLevel("SKU-1", 7, 0)
    assert get_stock("SKU-1", uow) == StockLevel("SKU-1", 7, 0)


def test_set_stock_never_goes_below_what_is_reserved():
    # Given 3 of 5 reserved
    uow = FakeUnitOfWork({"SKU-1": 5})
    reserve_stock(order_created(("SKU-1", 3)), uow)

    # Then counting 2 on hand is refused, counting 3 is allowed
    with pytest.raises(StockBelowReserved) as refused:
        set_stock(SetStock("SKU-1", 2), uow)
    assert refused.value.reserved == 3
    assert uow.committed.levels["SKU-1"] == StockLevel("SKU-1", 5, 3)
    assert set_stock(SetStock("SKU-1", 3), uow).available == 0


def test_unknown_stock_is_not_found():
    with pytest.raises(StockNotFound):
        get_stock("SKU-404", FakeUnitOfWork())


# --- consuming a reservation on dispatch ---------------------------------------------


def dispatched(order_id: uuid.UUID, *items: tuple[str, int]) -> ShipmentDispatched:
    from datetime import UTC, datetime

    return ShipmentDispatched(
        order_id=order_id,
        shipment_id=uuid.uuid4(),
        items=[ReservedItem(sku=s, quantity=q) for s, q in items],
        carrier="DHL",
        tracking_number="T-1",
        dispatched_at=datetime.now(UTC),
        metadata=EventMetadata.new("corr-1"),
    )


def test_a_dispatch_takes_the_reservation_out_of_on_hand_and_reserved_once():
    uow = FakeUnitOfWork({"A": 10, "B": 5})
    order = order_created(("A", 3), ("B", 5))
    reserve_stock(order, uow)
    event = dispatched(order.order_id, ("A", 3), ("B", 5))

    assert consume_reservation(event, uow) is Handled.CONSUMED
    assert uow.committed.levels == {"A": StockLevel("A", 7, 0), "B": StockLevel("B", 0, 0)}
    assert uow.locks[-1] == ["A", "B"]  # locked in SKU order, as reservations lock
    # the same event again, and the same dispatch under a new eventId: nothing more
    assert consume_reservation(event, uow) is Handled.DUPLICATE_EVENT
    again = dispatched(order.order_id, ("A", 3), ("B", 5))
    assert consume_reservation(again, uow) is Handled.ALREADY_SETTLED
    assert uow.committed.levels["A"] == StockLevel("A", 7, 0)
    # and a physical recount now works: nothing is reserved
    assert set_stock(SetStock("A", 0), uow) == StockLevel("A", 0, 0)


def test_a_dispatch_of_an_order_never_reserved_is_refused_and_changes_nothing():
    uow = FakeUnitOfWork({"A": 10})
    event = dispatched(uuid.uuid4(), ("A", 1))
    with pytest.raises(ReservationNotFound):
        consume_reservation(event, uow)
    assert uow.committed.settlements == {}
    assert uow.committed.processed == set()  # rolled back: the retry finds it unhandled
