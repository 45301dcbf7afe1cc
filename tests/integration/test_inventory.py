"""InventoryFunction and InventoryApiFunction on a real PostgreSQL."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common import bootstrap
from common.bootstrap import Container
from common.consumer import InvalidEvent
from common.events import (
    EventMetadata,
    InventoryReserved,
    OrderCreated,
    OrderCreatedItem,
    ShippingAddress,
)
from common.money import Money
from common.observability import logger
from common.settings import Settings
from inventory.handlers import reserve
from orderflow.lambda_runtime import LambdaContext
from orderflow.paths import SCHEMAS_DIR
from tests.support.api import HttpClient
from tests.support.events import deliver, eventbridge_event

pytestmark = [pytest.mark.db]

ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB"
)
TABLES = (
    "inventory.stock",
    "inventory.order_outcomes",
    "inventory.reservations",
    "eventing.outbox",
    "eventing.processed_events",
)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the functions log while the test runs (Powertools JSON, one object a line)."""
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    yield stream
    logger.removeHandler(capture)


def read_logs(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def put_stock(engine: Engine, **on_hand: int) -> None:
    with engine.begin() as conn:
        for sku, n in on_hand.items():
            conn.execute(
                text("INSERT INTO inventory.stock (sku, on_hand) VALUES (:s, :n)"),
                {"s": sku.replace("_", "-"), "n": n},
            )


def levels(engine: Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT sku, on_hand, reserved FROM inventory.stock ORDER BY sku"))
        return {r.sku: (r.on_hand, r.reserved) for r in rows}


def outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT detail_type, detail, source FROM eventing.outbox ORDER BY id")).all()


def reservations(engine: Engine) -> list[tuple[uuid.UUID, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT order_id, sku, quantity FROM inventory.reservations ORDER BY sku"))
        return [(r.order_id, r.sku, r.quantity) for r in rows]


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}  # noqa: S608


def order_created(
    *items: tuple[str, int], order_id: uuid.UUID | None = None, correlation_id: str = "corr-inv"
) -> OrderCreated:
    return OrderCreated(
        order_id=order_id or uuid.uuid4(),
        customer_id="customer-1",
        customer_email="ada@example.com",
        items=[OrderCreatedItem(sku=s, quantity=q, unit_price=Money.parse("2.00", "USD")) for s, q in items],
        total=Money(200 * sum(q for _, q in items), "USD"),
        currency="USD",
        shipping_address=ADDRESS,
        metadata=EventMetadata.new(correlation_id),
    )


def invoke(event: dict[str, Any]) -> dict[str, str]:
    """What InventoryFunction did with ``event``, delivered as a batch of one."""
    context = LambdaContext(function_name="InventoryFunction")
    outcome = deliver(reserve.consumer, event, bootstrap.container(), context)
    return {"handled": outcome.log["handled"]}


def schema(detail_type: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / f"{detail_type}.json").read_text())


# --- reserving -------------------------------------------------------------------------


def test_an_order_in_stock_is_reserved_in_full(deps, engine):
    # Given stock for both SKUs
    put_stock(engine, SKU_1=5, SKU_2=2)
    order = order_created(("SKU-1", 2), ("SKU-2", 2))

    # When InventoryFunction receives the OrderCreated
    assert invoke(eventbridge_event(order)) == {"handled": "RESERVED"}

    # Then every item is reserved
    assert levels(engine) == {"SKU-1": (5, 2), "SKU-2": (2, 2)}
    assert reservations(engine) == [(order.order_id, "SKU-1", 2), (order.order_id, "SKU-2", 2)]
    # And InventoryReserved waits in the outbox, valid, caused by the order's event
    [row] = outbox(engine)
    assert (row.source, row.detail_type) == ("inventory.service", "InventoryReserved")
    jsonschema.validate(row.detail, schema("InventoryReserved"))
    published = InventoryReserved.model_validate(row.detail)
    assert published.order_id == order.order_id
    assert published.customer_id == order.customer_id
    assert [(i.sku, i.quantity) for i in published.items] == [("SKU-1", 2), ("SKU-2", 2)]
    assert published.shipping_address == ADDRESS
    assert published.metadata.correlation_id == "corr-inv"
    assert published.metadata.causation_id == str(order.metadata.event_id)


def test_a_short_item_reserves_nothing_and_each_short_item_is_named(deps, engine):
    # Given SKU-1 plentiful, SKU-2 short, and SKU-9 never stocked
    put_stock(engine, SKU_1=5, SKU_2=1)
    order = order_created(("SKU-1", 2), ("SKU-2", 3), ("SKU-9", 1))

    # When the order arrives
    assert invoke(eventbridge_event(order)) == {"handled": "FAILED"}

    # Then the stock is unchanged and nothing is reserved
    assert levels(engine) == {"SKU-1": (5, 0), "SKU-2": (1, 0)}
    assert reservations(engine) == []
    # And InventoryReservationFailed names each short item with what is available
    [row] = outbox(engine)
    assert row.detail_type == "InventoryReservationFailed"
    jsonschema.validate(row.detail, schema("InventoryReservationFailed"))
    assert row.detail["shortItems"] == [
        {"sku": "SKU-2", "requested": 3, "available": 1},
        {"sku": "SKU-9", "requested": 1, "available": 0},
    ]
    assert row.detail["orderId"] == str(order.order_id)
    assert row.detail["metadata"]["causationId"] == str(order.metadata.event_id)


def test_the_same_event_twice_reserves_once_and_publishes_once(deps, engine):
    put_stock(engine, SKU_1=5)
    event = eventbridge_event(order_created(("SKU-1", 2)))

    assert invoke(event) == {"handled": "RESERVED"}
    assert invoke(event) == {"handled": "DUPLICATE_EVENT"}

    assert levels(engine) == {"SKU-1": (5, 2)}
    assert len(reservations(engine)) == 1
    assert len(outbox(engine)) == 1


def test_the_same_order_under_a_new_event_id_reserves_once(deps, engine):
    # Given an order already reserved
    put_stock(engine, SKU_1=5)
    order = order_created(("SKU-1", 2))
    invoke(eventbridge_event(order))

    # When OrderCreated for the same order is sent again with a new eventId
    again = order.model_copy(update={"metadata": EventMetadata.new("corr-inv")})
    assert invoke(eventbridge_event(again)) == {"handled": "ORDER_ALREADY_DECIDED"}

    # Then there is still one reservation and one event
    assert levels(engine) == {"SKU-1": (5, 2)}
    assert len(reservations(engine)) == 1
    assert len(outbox(engine)) == 1


def test_concurrent_duplicates_of_one_order_reserve_once(db, engine):
    # Given one order delivered 10 times at once, half under new eventIds
    put_stock(engine, SKU_1=100)
    order = order_created(("SKU-1", 3))
    events = [
        eventbridge_event(order if i % 2 else order.model_copy(update={"metadata": EventMetadata.new("c")}))
        for i in range(10)
    ]

    run_concurrently(db, events)

    assert levels(engine) == {"SKU-1": (100, 3)}
    assert len(reservations(engine)) == 1
    assert len(outbox(engine)) == 1


def run_concurrently(db: str, events: list[dict[str, Any]]) -> list[Any]:
    """Each event handled in a thread of its own with its own container (own engine)."""
    start = threading.Barrier(len(events))
    results: list[Any] = [None] * len(events)

    def work(i: int) -> None:
        deps = Container(settings=Settings(DATABASE_URL=db))
        try:
            start.wait()
            results[i] = deliver(reserve.consumer, events[i], deps)
        except BaseException as exc:
            results[i] = exc
        finally:
            deps.engine.dispose()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(events))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


def test_fifty_concurrent_orders_for_ten_in_stock_reserve_exactly_ten(db, engine):
    # Given 10 of SKU-1 in stock
    put_stock(engine, SKU_1=10)
    events = [eventbridge_event(order_created(("SKU-1", 1))) for _ in range(50)]

    # And a sampler watching what is available while the orders are handled
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        with engine.connect() as conn:
            while not done.is_set():
                samples.append(
                    conn.execute(
                        text("SELECT on_hand - reserved FROM inventory.stock WHERE sku = 'SKU-1'")
                    ).scalar_one()
                )
                conn.rollback()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        # When 50 orders of one each arrive at once, each in its own container
        results = run_concurrently(db, events)
    finally:
        done.set()
        sampler.join()

    # Then exactly 10 are reserved and 40 fail
    assert sorted(r.log["handled"] for r in results).count("RESERVED") == 10
    published = [row.detail_type for row in outbox(engine)]
    assert published.count("InventoryReserved") == 10
    assert published.count("InventoryReservationFailed") == 40
    assert levels(engine) == {"SKU-1": (10, 10)}
    assert len(reservations(engine)) == 10
    # And nothing available ever went below zero
    assert samples and min(samples) >= 0


def test_the_database_refuses_reserving_more_than_on_hand(engine):
    # The CHECK constraint backs the use case: even a buggy writer cannot oversell.
    from sqlalchemy.exc import DBAPIError

    put_stock(engine, SKU_1=1)
    with pytest.raises(DBAPIError, match="stock_reserved_within_on_hand"), engine.begin() as conn:
        conn.execute(text("UPDATE inventory.stock SET reserved = 2 WHERE sku = 'SKU-1'"))


# --- malformed events ------------------------------------------------------------------


def _valid() -> dict[str, Any]:
    return eventbridge_event(order_created(("SKU-1", 1)))


def _without_order_id() -> dict[str, Any]:
    event = _valid()
    del event["detail"]["orderId"]
    return event


def _quantity_as_text() -> dict[str, Any]:
    event = _valid()
    event["detail"]["items"][0]["quantity"] = "many"
    return event


def _without_metadata() -> dict[str, Any]:
    event = _valid()
    del event["detail"]["metadata"]
    return event


def _unknown_detail_type() -> dict[str, Any]:
    return {**_valid(), "detail-type": "ShipmentRequested"}


def _wrong_source() -> dict[str, Any]:
    return {**_valid(), "source": "shipping.service"}


def _detail_not_an_object() -> dict[str, Any]:
    return {**_valid(), "detail": "OrderCreated"}


def _no_envelope_time() -> dict[str, Any]:
    event = _valid()
    del event["time"]
    return event


@pytest.mark.parametrize(
    "make",
    [
        _without_order_id,
        _quantity_as_text,
        _without_metadata,
        _unknown_detail_type,
        _wrong_source,
        _detail_not_an_object,
        _no_envelope_time,
    ],
)
def test_a_malformed_event_is_refused_logged_and_changes_nothing(deps, engine, logs, make):
    # Given stock, and a malformed or unexpected event
    put_stock(engine, SKU_1=5)
    event = make()
    before = row_counts(engine)

    # When InventoryFunction receives it
    with pytest.raises(InvalidEvent):
        invoke(event)

    # Then an error naming the event's id is logged
    lines = read_logs(logs)
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors, lines
    assert any(line.get("event_id") == event["id"] for line in errors), errors
    # And no table changed
    assert row_counts(engine) == before
    assert levels(engine) == {"SKU-1": (5, 0)}


# --- the admin API ---------------------------------------------------------------------


@pytest.fixture
def inventory_api(container: Any, mint: Any) -> HttpClient:
    """InventoryApiFunction's handler, called with HTTP API v2 events as an admin."""
    from inventory.handlers.api import handler

    return HttpClient(handler, token=mint(sub="admin-1", scope="openid admin"))


def test_admins_create_read_and_recount_stock(inventory_api, engine):
    created = inventory_api.put("/inventory/SKU-1", {"onHand": 7})
    assert created.status == 200, created.body
    assert created.body == {"sku": "SKU-1", "onHand": 7, "reserved": 0, "available": 7}
    assert created.headers["content-type"] == "application/json"
    assert created.headers["x-correlation-id"]

    fetched = inventory_api.get("/inventory/SKU-1")
    assert fetched.status == 200
    assert fetched.body == created.body

    recounted = inventory_api.put("/inventory/SKU-1", {"onHand": 3})
    assert recounted.body == {"sku": "SKU-1", "onHand": 3, "reserved": 0, "available": 3}
    assert levels(engine) == {"SKU-1": (3, 0)}


def test_reserved_stock_shows_and_on_hand_cannot_drop_below_it(inventory_api, engine):
    # Given 3 of 5 reserved by an order
    inventory_api.put("/inventory/SKU-1", {"onHand": 5})
    deliver(reserve.consumer, eventbridge_event(order_created(("SKU-1", 3))))

    # Then the API shows it
    assert inventory_api.get("/inventory/SKU-1").body == {
        "sku": "SKU-1",
        "onHand": 5,
        "reserved": 3,
        "available": 2,
    }
    # And counting fewer than 3 on hand is a conflict that changes nothing
    refused = inventory_api.put("/inventory/SKU-1", {"onHand": 2})
    assert refused.status == 409
    assert refused.body["error"]["code"] == "STOCK_BELOW_RESERVED"
    assert refused.body["requestId"]
    assert levels(engine) == {"SKU-1": (5, 3)}
    # And exactly 3 is fine
    assert inventory_api.put("/inventory/SKU-1", {"onHand": 3}).body["available"] == 0


def test_unknown_sku_is_not_found(inventory_api):
    for path in ("/inventory/SKU-404", "/inventory/not%20a%20sku", "/inventory/" + "x" * 300):
        result = inventory_api.get(path)
        assert result.status == 404, (path, result.body)
        assert result.body["error"]["code"] == "NOT_FOUND"


def test_customers_are_forbidden(inventory_api, mint):
    customer = mint(sub="customer-1")
    assert inventory_api.get("/inventory/SKU-1", token=customer).status == 403
    result = inventory_api.put("/inventory/SKU-1", {"onHand": 1}, token=customer)
    assert result.status == 403
    assert result.body["error"]["code"] == "FORBIDDEN"


def test_a_whole_number_written_with_a_point_is_an_integer(inventory_api):
    """JSON (and the document's "integer") counts 7.0 as 7; 7.5 stays refused (below)."""
    result = inventory_api.put("/inventory/SKU-1", {"onHand": 7.0})
    assert result.status == 200, result.body
    assert result.body["onHand"] == 7


def test_no_token_is_unauthorized(inventory_api):
    assert inventory_api.get("/inventory/SKU-1", token=None).status == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"onHand": -1},
        {"onHand": 1.5},
        {"onHand": "3"},
        {"onHand": True},
        {"onHand": None},
        {"onHand": 2**31},
        {"onHand": 10**100},
        {"onHand": 1, "extra": 1},
        [],
        "3",
        3,
    ],
)
def test_a_bad_body_is_unprocessable(inventory_api, engine, body):
    result = inventory_api.put("/inventory/SKU-1", body)
    assert result.status == 422, result.body
    assert result.body["error"]["code"] == "VALIDATION_FAILED"
    assert result.body["error"]["details"]
    assert levels(engine) == {}


def test_bad_input_never_produces_a_500(inventory_api):
    cases = [
        inventory_api.call("PUT", "/inventory/SKU-1", body="{not json"),
        inventory_api.call("PUT", "/inventory/SKU-1"),
        inventory_api.call("PUT", "/inventory/SKU-1", body=b"\xff\xfe"),
        inventory_api.call("PUT", "/inventory/SKU-1", body="x" * (70 * 1024)),
        inventory_api.put("/inventory/bad%sku", {"onHand": 1}),
        inventory_api.put("/inventory/" + "y" * 65, {"onHand": 1}),
        inventory_api.call("DELETE", "/inventory/SKU-1"),
        inventory_api.get("/inventory/"),
    ]
    statuses = [c.status for c in cases]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert statuses[0] == statuses[2] == 400  # not JSON
    assert statuses[1] in (400, 422)  # no body at all
    assert statuses[3:6] == [413, 422, 422]


# --- the sample events, as `sam local invoke` / `orderflow invoke` would send them --------


def test_the_sample_events_run_through_the_functions(container, mint, engine):
    from inventory.handlers.api import handler as api_handler

    samples = SCHEMAS_DIR.parent
    token = mint(sub="admin-1", scope="admin")

    def load(name: str) -> dict[str, Any]:
        event = json.loads((samples / name).read_text())
        if "headers" in event:
            event["headers"]["authorization"] = f"Bearer {token}"
        return event

    context = LambdaContext(function_name="InventoryApiFunction")
    assert api_handler(load("InventoryApiFunction/get-inventory.json"), context)["statusCode"] == 404
    put = api_handler(load("InventoryApiFunction/put-inventory.json"), context)
    assert put["statusCode"] == 200, put
    assert json.loads(put["body"]) == {"sku": "SKU-1", "onHand": 25, "reserved": 0, "available": 25}
    got = api_handler(load("InventoryApiFunction/get-inventory.json"), context)
    assert json.loads(got["body"])["onHand"] == 25

    put_stock(engine, SKU_2=1)
    consumer_context = LambdaContext(function_name="InventoryFunction")
    assert reserve.handler(load("InventoryFunction/order-created.json"), consumer_context) == {
        "batchItemFailures": []
    }
    assert levels(engine) == {"SKU-1": (25, 2), "SKU-2": (1, 1)}
