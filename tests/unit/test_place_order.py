"""Use cases of the orders service on in-memory fakes: no sockets, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from common.events import OrderCreated
from common.money import Money
from orders.domain.commands import PlaceOrder, UpsertProduct
from orders.domain.model import (
    IdempotencyKeyReused,
    MixedCurrencies,
    Order,
    OrderNotFound,
    OrderStatus,
    Product,
    UnknownSkus,
)
from orders.usecases import get_order, list_orders, order_created, place_order, upsert_product
from tests.unit.fakes import FakeUnitOfWork, Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "line2": None,
    "city": "London",
    "postalCode": "N1 9GU",
    "country": "GB",
}


def ticking_clock(start: datetime = T0, step: timedelta = timedelta(seconds=1)):
    ticks = count()
    return lambda: start + step * next(ticks)


def command(*quantities: tuple[str, int], **overrides: object) -> PlaceOrder:
    fields: dict[str, object] = {
        "customer_id": "customer-1",
        "customer_email": "ada@example.com",
        "quantities": list(quantities) or [("SKU-1", 2), ("SKU-2", 1)],
        "shipping_address": ADDRESS,
        "correlation_id": "corr-1",
        "request_hash": "hash-a",
    }
    fields.update(overrides)
    return PlaceOrder(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store() -> Store:
    return Store(
        products={
            "SKU-1": Product("SKU-1", "Widget", Money.parse("12.50", "USD")),
            "SKU-2": Product("SKU-2", "Gadget", Money.parse("3.99", "USD")),
            "SKU-EUR": Product("SKU-EUR", "Euro thing", Money.parse("5.00", "EUR")),
        }
    )


@pytest.fixture
def uow(store: Store) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


# --- place_order: pricing --------------------------------------------------------------


def test_an_order_is_priced_from_the_catalog_and_stored_with_its_event(uow, store):
    # When a customer orders two products
    placed = place_order(command(("SKU-1", 2), ("SKU-2", 1)), uow, clock=lambda: T0)

    # Then every line carries the catalog's price, and the total adds them up
    order = placed.order
    assert [(line.sku, line.quantity, line.unit_price, line.line_total) for line in order.lines] == [
        ("SKU-1", 2, Money.parse("12.50", "USD"), Money.parse("25.00", "USD")),
        ("SKU-2", 1, Money.parse("3.99", "USD"), Money.parse("3.99", "USD")),
    ]
    assert order.total == Money.parse("28.99", "USD")
    assert order.currency == "USD"
    assert order.status is OrderStatus.PENDING
    assert order.created_at == order.updated_at == T0

    # And the order and its OrderCreated were committed together, once
    assert uow.commits == 1
    assert list(store.orders) == [order.order_id]
    [event] = store.outbox
    assert isinstance(event, OrderCreated)
    assert placed.outbox_ids == [1]
    assert event.order_id == order.order_id
    assert event.customer_email == "ada@example.com"
    assert [(i.sku, i.quantity, i.unit_price) for i in event.items] == [
        ("SKU-1", 2, Money.parse("12.50", "USD")),
        ("SKU-2", 1, Money.parse("3.99", "USD")),
    ]
    assert event.total == Money.parse("28.99", "USD")
    assert event.metadata.correlation_id == "corr-1"
    assert event.metadata.causation_id is None
    assert event.shipping_address.postal_code == "N1 9GU"


def test_the_order_id_chosen_for_the_request_is_the_order_id_stored(uow, store):
    order_id = uuid.uuid4()
    placed = place_order(command(order_id=order_id), uow)
    assert placed.order.order_id == order_id
    assert order_id in store.orders


def test_an_unknown_sku_is_refused_and_nothing_is_stored(uow, store):
    with pytest.raises(UnknownSkus) as raised:
        place_order(command(("SKU-1", 1), ("NOPE-1", 1), ("NOPE-2", 3)), uow)

    assert raised.value.skus == ["NOPE-1", "NOPE-2"]
    assert uow.commits == 0 and uow.rollbacks == 1
    assert store.orders == {} and store.outbox == []


def test_items_priced_in_several_currencies_are_refused(uow, store):
    with pytest.raises(MixedCurrencies) as raised:
        place_order(command(("SKU-1", 1), ("SKU-EUR", 1)), uow)

    assert raised.value.currencies == ["EUR", "USD"]
    assert uow.commits == 0
    assert store.orders == {} and store.outbox == []


def test_a_price_change_after_ordering_does_not_change_the_order(uow, store):
    placed = place_order(command(("SKU-1", 1)), uow)
    upsert_product(UpsertProduct("SKU-1", "Widget", Money.parse("99.00", "USD")), uow)

    assert get_order(placed.order.order_id, "customer-1", uow).total == Money.parse("12.50", "USD")


# --- place_order: idempotency -----------------------------------------------------------


def test_the_same_key_and_request_return_the_first_order_and_write_no_new_event(uow, store):
    # Given an order placed with an Idempotency-Key
    first = place_order(command(idempotency_key="k-1"), uow)

    # When the same request comes again (a new request id, so a new order id)
    again = place_order(command(idempotency_key="k-1"), uow)

    # Then the first order comes back, and nothing new was written
    assert again.order.order_id == first.order.order_id
    assert again.outbox_ids == []
    assert len(store.orders) == 1
    assert len(store.outbox) == 1
    assert uow.commits == 1


def test_the_same_key_with_another_request_is_refused(uow, store):
    place_order(command(idempotency_key="k-1", request_hash="hash-a"), uow)

    with pytest.raises(IdempotencyKeyReused):
        place_order(command(("SKU-1", 5), idempotency_key="k-1", request_hash="hash-b"), uow)

    assert len(store.orders) == 1 and len(store.outbox) == 1


def test_an_idempotency_key_belongs_to_one_customer(uow, store):
    mine = place_order(command(idempotency_key="k-1"), uow)
    theirs = place_order(command(idempotency_key="k-1", customer_id="customer-2"), uow)

    assert theirs.order.order_id != mine.order.order_id
    assert theirs.order.customer_id == "customer-2"
    assert len(store.orders) == 2 and len(store.outbox) == 2


def _twin(cmd: PlaceOrder, store: Store, **overrides: object) -> Order:
    """The order a concurrent request with the same key committed."""
    order = Order.price(
        order_id=uuid.uuid4(),
        customer_id=cmd.customer_id,
        customer_email=cmd.customer_email,
        quantities=cmd.quantities,
        catalog=store.products,
        shipping_address=cmd.shipping_address,
        correlation_id="corr-twin",
        now=T0,
        idempotency_key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
    )
    for name, value in overrides.items():
        setattr(order, name, value)
    return order


def test_losing_the_race_on_a_key_returns_the_winners_order(uow, store):
    # Given a concurrent twin that commits between our key check and our insert
    cmd = command(idempotency_key="k-1")
    twin = _twin(cmd, store)
    uow.before_next_insert = lambda: uow.commit_concurrently(twin, order_created(twin))

    # When this request's insert conflicts
    placed = place_order(cmd, uow)

    # Then it answers with the twin's order and writes nothing of its own
    assert placed.order.order_id == twin.order_id
    assert placed.outbox_ids == []
    assert uow.commits == 0 and uow.rollbacks == 1
    assert list(store.orders) == [twin.order_id]
    assert [e.order_id for e in store.outbox] == [twin.order_id]  # type: ignore[attr-defined]


def test_losing_the_race_to_another_request_on_the_same_key_is_a_conflict(uow, store):
    cmd = command(idempotency_key="k-1", request_hash="hash-a")
    twin = _twin(cmd, store, request_hash="hash-b")
    uow.before_next_insert = lambda: uow.commit_concurrently(twin)

    with pytest.raises(IdempotencyKeyReused):
        place_order(cmd, uow)
    assert list(store.orders) == [twin.order_id]


def test_retrying_a_transaction_whose_commit_went_through_returns_that_order(uow, store):
    # Given a request whose commit succeeded although the connection then dropped
    cmd = command()  # no Idempotency-Key: only the request's own order id protects it
    first = place_order(cmd, uow)

    # When retry_on_disconnect runs the same command again
    retried = place_order(cmd, uow)

    # Then the insert conflicts on the order id and the stored order comes back
    assert retried.order.order_id == first.order.order_id == cmd.order_id
    assert retried.outbox_ids == []
    assert len(store.orders) == 1 and len(store.outbox) == 1
    assert uow.commits == 1


# --- get_order and list_orders ----------------------------------------------------------


def test_a_customer_reads_their_own_order(uow):
    placed = place_order(command(), uow)
    found = get_order(placed.order.order_id, "customer-1", uow)
    assert found.order_id == placed.order.order_id
    assert found.total == Money.parse("28.99", "USD")
    assert uow.commits == 1  # reading committed nothing


def test_someone_elses_order_is_as_unknown_as_a_missing_one(uow):
    placed = place_order(command(), uow)

    with pytest.raises(OrderNotFound):
        get_order(placed.order.order_id, "customer-2", uow)
    with pytest.raises(OrderNotFound):
        get_order(uuid.uuid4(), "customer-1", uow)


def test_orders_are_listed_newest_first_one_page_at_a_time(uow):
    # Given five orders of mine, placed a second apart, and one of someone else's
    clock = ticking_clock()
    mine = [place_order(command(), uow, clock).order.order_id for _ in range(5)]
    place_order(command(customer_id="customer-2"), uow, clock)

    # When I page through them two at a time
    pages, after = [], None
    while True:
        page, after = list_orders("customer-1", 2, after, uow)
        pages.append([o.order_id for o in page])
        if after is None:
            break

    # Then I see only mine, newest first, each once
    assert pages == [[mine[4], mine[3]], [mine[2], mine[1]], [mine[0]]]


def test_orders_created_at_the_same_instant_are_each_listed_once(uow):
    same_time = [place_order(command(), uow, lambda: T0).order.order_id for _ in range(7)]

    seen, after = [], None
    while True:
        page, after = list_orders("customer-1", 3, after, uow)
        seen += [o.order_id for o in page]
        if after is None:
            break

    assert sorted(seen) == sorted(same_time)
    assert seen == sorted(same_time, reverse=True)  # ties broken by order id


def test_a_full_last_page_has_no_next_cursor(uow):
    clock = ticking_clock()
    for _ in range(2):
        place_order(command(), uow, clock)

    page, after = list_orders("customer-1", 2, None, uow)
    assert len(page) == 2
    assert after is None


def test_a_customer_without_orders_gets_an_empty_page(uow):
    assert list_orders("nobody", 20, None, uow) == ([], None)


# --- upsert_product -----------------------------------------------------------------------


def test_a_product_is_created_then_updated_and_committed_each_time(uow, store):
    created = upsert_product(UpsertProduct("SKU-9", "Thing", Money.parse("1.00", "USD")), uow)
    updated = upsert_product(UpsertProduct("SKU-9", "Thing v2", Money.parse("2.50", "USD")), uow)

    assert created == Product("SKU-9", "Thing", Money.parse("1.00", "USD"))
    assert store.products["SKU-9"] == updated == Product("SKU-9", "Thing v2", Money.parse("2.50", "USD"))
    assert uow.commits == 2

    # And new orders are priced at the new price
    placed = place_order(command(("SKU-9", 2)), uow)
    assert placed.order.total == Money.parse("5.00", "USD")


# --- catalog reads and an admin's view ---------------------------------------------------


def test_the_catalog_pages_by_sku_and_an_unknown_sku_is_not_found():
    from orders.domain.model import ProductNotFound
    from orders.usecases import get_product, list_products

    store = Store(products={s: Product(s, s, Money.parse("1.00", "USD")) for s in ("C", "A", "B")})
    uow = FakeUnitOfWork(store)
    page, after = list_products(2, None, uow)
    assert [p.sku for p in page] == ["A", "B"] and after == "B"
    page, after = list_products(2, after, uow)
    assert [p.sku for p in page] == ["C"] and after is None
    assert get_product("A", uow).sku == "A"
    with pytest.raises(ProductNotFound):
        get_product("Z", uow)


def test_an_admin_reads_any_order(uow):
    placed = place_order(command(), uow)
    assert get_order(placed.order.order_id, None, uow).customer_id == "customer-1"
    with pytest.raises(OrderNotFound):
        get_order(uuid.uuid4(), None, uow)
