"""What happens when things fail: EventBridge refusing or erroring, relays racing,
connections dying, duplicate requests arriving at once. Real PostgreSQL, moto.

Every test ends by counting what reached the bus per order: exactly once each.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from common import bootstrap
from common.db import is_connection_error, retry_on_disconnect
from common.events import EventMetadata, OrderCreated, OrderCreatedItem, ShippingAddress
from common.money import Money
from common.outbox.relay import relay
from common.outbox.writer import add_event
from common.publisher import EventBridgePublisher
from orderflow.lambda_runtime import LambdaContext, http_api_event
from tests.support.aws import FlakyEvents

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
ORDER: dict[str, Any] = json.loads((ROOT / "tests/fixtures/place_order.json").read_text())
SCHEDULED_EVENT = {
    "version": "0",
    "id": "5f1c7a1e-0000-4000-8000-000000000001",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "000000000000",
    "time": "2024-05-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:000000000000:rule/relay"],
    "detail": {},
}


# --- helpers --------------------------------------------------------------------------------


def run_relay_function() -> dict[str, int]:
    """OutboxRelayFunction, invoked as its schedule would."""
    from orders.handlers.relay import handler

    return handler(SCHEDULED_EVENT, LambdaContext(function_name="OutboxRelayFunction"))


def published_per_order(aws: Any) -> Counter[str]:
    """How many OrderCreated reached the bus for each orderId (drains the queue)."""
    return Counter(e["detail"]["orderId"] for e in aws.drain("order-created"))


def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def terminate_backend(url: str, pid: int) -> None:
    """Kill one server process from a separate admin connection, and wait for it to go."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            # The timeout form (PostgreSQL 14+) waits until the backend has exited.
            assert conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}).scalar()
            gone = conn.execute(
                text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar()
            assert gone
    finally:
        admin.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def order_created_event(n: int) -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        customer_id=f"customer-{n}",
        customer_email="ada@example.com",
        items=[OrderCreatedItem(sku="SKU-1", quantity=1, unit_price=Money.parse("12.50", "USD"))],
        total=Money.parse("12.50", "USD"),
        currency="USD",
        shipping_address=ShippingAddress.model_validate(ORDER["shippingAddress"]),
        metadata=EventMetadata(
            event_id=uuid.uuid4(),
            correlation_id=f"corr-{n}",
            causation_id=None,
            timestamp=datetime.now(UTC),
            version="1.0",
        ),
    )


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def flaky(aws: Any) -> FlakyEvents:
    return FlakyEvents(aws.events)


@pytest.fixture
def flaky_container(catalog: Any, settings: Any, aws: Any, flaky: FlakyEvents) -> Iterator[Any]:
    """The functions' container with an EventBridge that fails on demand (catalog in place)."""
    deps = bootstrap.override(
        settings=settings,
        events_client=flaky,
        publisher=EventBridgePublisher(flaky, aws.name),
    )
    yield deps
    bootstrap.override()


# --- (a) PutEvents raising ------------------------------------------------------------------


def test_when_put_events_keeps_failing_the_order_is_kept_and_the_relay_publishes_it_once(
    orders_api, flaky_container, flaky, aws, db
):
    # Given EventBridge erroring on every call
    flaky.raise_calls = 1_000

    # When a customer places an order
    placed = orders_api.post("/orders", ORDER)

    # Then the order is stored and confirmed, and nothing reached the bus
    assert placed.status == 201, placed.body
    order_id = placed.body["orderId"]
    assert flaky.calls == 1  # one attempt: the SDK and the fast path retry nothing
    assert published_per_order(aws) == Counter()
    assert scalar(db, "SELECT count(*) FROM orders.orders WHERE order_id = :id", id=order_id) == 1
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 1
    assert scalar(db, "SELECT attempts FROM eventing.outbox") == 1
    assert "EndpointConnectionError" in scalar(db, "SELECT last_error FROM eventing.outbox")

    # When EventBridge recovers and the relay runs
    flaky.raise_calls = 0
    assert run_relay_function() == {"published": 1, "failed": 0, "parked": 0}

    # Then the event is on the bus exactly once, and a second run publishes nothing
    assert published_per_order(aws) == Counter({order_id: 1})
    assert run_relay_function() == {"published": 0, "failed": 0, "parked": 0}
    assert published_per_order(aws) == Counter()
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 0


def test_while_put_events_still_fails_the_relay_leaves_the_rows_for_later(
    orders_api, flaky_container, flaky, aws, db
):
    flaky.raise_calls = 1_000
    order_id = orders_api.post("/orders", ORDER).body["orderId"]

    # When the relay runs while EventBridge is still down
    assert run_relay_function() == {"published": 0, "failed": 1, "parked": 0}
    assert scalar(db, "SELECT attempts FROM eventing.outbox") == 2

    # Then the row waits, and goes out once EventBridge is back
    flaky.raise_calls = 0
    assert run_relay_function() == {"published": 1, "failed": 0, "parked": 0}
    assert published_per_order(aws) == Counter({order_id: 1})


# --- (b) PutEvents refusing some entries ------------------------------------------------------


def _pending_orders(orders_api: Any, flaky: FlakyEvents, n: int) -> list[str]:
    """n orders stored with their events still unsent (EventBridge down while they came)."""
    flaky.raise_calls = 1_000
    ids = []
    for _ in range(n):
        placed = orders_api.post("/orders", ORDER)
        assert placed.status == 201, placed.body
        ids.append(placed.body["orderId"])
    flaky.raise_calls = 0
    return ids


def make_due(db: str) -> None:
    """Time passes: every backed-off row is due now (as it would be a run or two later)."""
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE eventing.outbox SET next_attempt_at = now() WHERE published_at IS NULL"))
    engine.dispose()


def test_a_refused_entry_backs_off_while_the_others_go_out(orders_api, flaky_container, flaky, aws, db):
    # Given four orders whose events are unsent
    ids = _pending_orders(orders_api, flaky, 4)
    calls_before = flaky.calls

    # When the relay's PutEvents call refuses one entry of four (FailedEntryCount = 1)
    flaky.refuse_entries = 1
    result = run_relay_function()

    # Then three went out in one call, and the refused row waits out its backoff
    assert result == {"published": 3, "failed": 1, "parked": 0}
    assert flaky.calls - calls_before == 1
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 1
    assert scalar(
        db,
        "SELECT next_attempt_at > now() AND next_attempt_at <= now() + interval '60 seconds' "
        "AND last_error LIKE 'InternalFailure%' FROM eventing.outbox WHERE published_at IS NULL",
    )
    assert run_relay_function() == {"published": 0, "failed": 0, "parked": 0}

    # And once it is due, the next run publishes it: each order's event exactly once in all
    first = published_per_order(aws)
    make_due(db)
    assert run_relay_function() == {"published": 1, "failed": 0, "parked": 0}
    assert first + published_per_order(aws) == Counter(dict.fromkeys(ids, 1))


def test_an_entry_refused_at_publish_after_commit_goes_out_once_through_the_relay(
    orders_api, flaky_container, flaky, aws, db
):
    flaky.refuse_entries = 1
    placed = orders_api.post("/orders", ORDER)

    assert placed.status == 201
    assert published_per_order(aws) == Counter()
    make_due(db)
    assert run_relay_function() == {"published": 1, "failed": 0, "parked": 0}
    assert published_per_order(aws) == Counter({placed.body["orderId"]: 1})
    assert run_relay_function() == {"published": 0, "failed": 0, "parked": 0}


# --- (c) relays racing -------------------------------------------------------------------------


@pytest.mark.parametrize("relays", [2, 4])
def test_relays_running_in_parallel_publish_each_row_exactly_once(relays, db, aws):
    # Given 60 unsent outbox rows
    events = [order_created_event(n) for n in range(60)]
    setup = create_engine(db)
    with setup.begin() as conn:
        for event in events:
            add_event(conn, event)
    setup.dispose()

    # When several relays (each its own container: engine and publisher) start together
    start = threading.Barrier(relays)

    def one_relay() -> int:
        engine = create_engine(db, pool_size=1, max_overflow=0)
        try:
            start.wait()
            return relay(engine, EventBridgePublisher(aws.events, aws.name)).published
        finally:
            engine.dispose()

    with ThreadPoolExecutor(relays) as pool:
        counts = list(pool.map(lambda _: one_relay(), range(relays)))

    # Then between them they published every row once, and the bus got each event once
    assert sum(counts) == 60
    assert published_per_order(aws) == Counter({str(e.order_id): 1 for e in events})
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 0


# --- (d) connections dying -----------------------------------------------------------------


def test_a_connection_killed_between_invocations_does_not_fail_the_next_request(
    orders_api, catalog, container, db
):
    # Given a warm container whose pooled connection the database then kills
    assert orders_api.post("/orders", ORDER).status == 201
    killed = backend_pid(container.engine)
    terminate_backend(db, killed)

    # When the next request comes
    placed = orders_api.post("/orders", ORDER)

    # Then it succeeds on a new connection
    assert placed.status == 201, placed.body
    assert orders_api.get(f"/orders/{placed.body['orderId']}").status == 200
    assert backend_pid(container.engine) != killed


def test_without_pre_ping_a_killed_connection_is_retried_by_retry_on_disconnect(
    orders_api, catalog, settings, aws, db, caplog
):
    # Given a container whose pool hands out connections unchecked (no pre-ping), so the
    # first statement of the next request meets the dead connection
    engine = create_engine(db, pool_size=1, max_overflow=0, pool_pre_ping=False)
    deps = bootstrap.override(settings=settings, events_client=aws.events, engine=engine)
    try:
        assert orders_api.post("/orders", ORDER).status == 201
        killed = backend_pid(deps.engine)
        terminate_backend(db, killed)

        # When the next request comes, Then retry_on_disconnect opens a new one and it succeeds
        placed = orders_api.post("/orders", ORDER)
        assert placed.status == 201, placed.body
        assert [r for r in caplog.records if r.getMessage() == "database connection lost; retrying"]
        assert scalar(db, "SELECT count(*) FROM orders.orders") == 2
        assert backend_pid(deps.engine) != killed
    finally:
        bootstrap.override()


def test_a_connection_lost_mid_transaction_is_retried(db):
    engine = create_engine(db, pool_size=1, max_overflow=0, pool_pre_ping=False)
    attempts: list[int] = []

    def add_product() -> int:
        with engine.begin() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            attempts.append(pid)
            if len(attempts) == 1:
                terminate_backend(db, pid)  # the connection dies inside the transaction
            conn.execute(
                text(
                    "INSERT INTO orders.products (sku, name, unit_price, currency) "
                    "VALUES ('SKU-R', 'Retried', 1.00, 'USD')"
                )
            )
            return int(pid)

    try:
        last_pid = retry_on_disconnect(add_product, engine=engine, base_delay=0.001)
    finally:
        engine.dispose()

    assert len(attempts) == 2
    assert last_pid != attempts[0]
    assert scalar(db, "SELECT count(*) FROM orders.products WHERE sku = 'SKU-R'") == 1


def test_a_statement_error_is_raised_at_once_without_retry(db):
    engine = create_engine(db)
    attempts = 0

    def add_the_same_product_twice() -> None:
        nonlocal attempts
        attempts += 1
        with engine.begin() as conn:
            for _ in range(2):
                conn.execute(
                    text(
                        "INSERT INTO orders.products (sku, name, unit_price, currency) "
                        "VALUES ('SKU-D', 'Duplicate', 1.00, 'USD')"
                    )
                )

    try:
        with pytest.raises(IntegrityError) as raised:
            retry_on_disconnect(add_the_same_product_twice, engine=engine, base_delay=0.001)
    finally:
        engine.dispose()

    assert attempts == 1
    assert not is_connection_error(raised.value)
    assert scalar(db, "SELECT count(*) FROM orders.products WHERE sku = 'SKU-D'") == 0


# --- (e) one Idempotency-Key, many requests at once -------------------------------------------
#
# Each request runs in its own forked process, as in its own Lambda container: Powertools'
# resolver keeps the current event on a class attribute (one request at a time per
# process, as Lambda guarantees), so threads through one handler would mix requests up.
# A child cannot reach this process's in-process moto, so its PutEvents fail (FlakyEvents)
# and the outbox keeps what it wrote; the relay, run here, then puts it on the bus.


def _container_process(
    index: int, event: dict[str, Any], deps: dict[str, Any], url: str, barrier: Any, results: Any
) -> None:
    try:
        flaky = FlakyEvents(None)
        flaky.raise_calls = 1_000_000
        engine = create_engine(url, pool_size=1, max_overflow=0)
        publisher = EventBridgePublisher(flaky, deps["settings"].event_bus_name)
        bootstrap.override(events_client=flaky, engine=engine, publisher=publisher, **deps)
        from orders.handlers.api import handler

        barrier.wait()
        result = handler(event, LambdaContext(function_name="OrdersApiFunction"))
        engine.dispose()
        results.put((index, result["statusCode"], json.loads(result["body"])))
    except BaseException as exc:  # report, never hang the parent
        results.put((index, -1, repr(exc)))


def _post_all_at_once(
    container: Any, bodies: list[dict[str, Any]], key: str, token: str
) -> list[tuple[int, Any]]:
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    barrier, results = fork.Barrier(len(bodies)), fork.Queue()
    # No pooled connection may be inherited: a child would share its socket.
    container.engine.dispose()
    deps = {"settings": container.settings, "verifier": container.verifier}  # a warm key set
    children = []
    for i, body in enumerate(bodies):
        event = http_api_event(
            "POST",
            "/orders",
            body=json.dumps(body),
            headers={
                "authorization": f"Bearer {token}",
                "content-type": "application/json",
                "idempotency-key": key,
            },
        )
        child = fork.Process(
            target=_container_process,
            args=(i, event, deps, container.settings.database_url, barrier, results),
        )
        child.start()
        children.append(child)
    collected = dict((i, (status, body)) for i, status, body in (results.get(timeout=120) for _ in bodies))
    for child in children:
        child.join()
    return [collected[i] for i in range(len(bodies))]


def test_twenty_concurrent_requests_with_one_key_make_one_order_and_one_event(
    orders_api, catalog, container, mint, aws, db
):
    # Given a warm container (the key set is cached)
    assert orders_api.get("/orders").status == 200

    # When twenty identical requests with one Idempotency-Key arrive at once
    results = _post_all_at_once(container, [ORDER] * 20, "same-key", mint())

    # Then every one gets 201 and the same order
    assert [status for status, _ in results] == [201] * 20, results
    order_ids = {body["orderId"] for _, body in results}
    assert len(order_ids) == 1
    assert all(body == results[0][1] for _, body in results)

    # And exactly one order, one outbox row and one OrderCreated exist
    [order_id] = order_ids
    assert scalar(db, "SELECT count(*) FROM orders.orders") == 1
    assert scalar(db, "SELECT count(*) FROM orders.order_items") == len(ORDER["items"])
    assert scalar(db, "SELECT count(*) FROM eventing.outbox") == 1
    assert run_relay_function() == {"published": 1, "failed": 0, "parked": 0}
    assert published_per_order(aws) == Counter({order_id: 1})


def test_concurrent_requests_with_one_key_and_two_bodies_make_one_order(
    orders_api, catalog, container, mint, aws, db
):
    assert orders_api.get("/orders").status == 200
    other = {**ORDER, "items": [{"sku": "SKU-1", "quantity": 9}]}

    # When ten requests of each of two bodies race with one key
    bodies = [ORDER, other] * 10
    results = _post_all_at_once(container, bodies, "contested-key", mint())

    # Then one body won: its requests all get that order, the others all get 409
    winners = {i % 2 for i, (status, _) in enumerate(results) if status == 201}
    assert len(winners) == 1, results
    [winner] = winners
    for i, (status, body) in enumerate(results):
        if i % 2 == winner:
            assert status == 201
        else:
            assert status == 409 and body["error"]["code"] == "IDEMPOTENCY_KEY_REUSED", body
    assert len({body["orderId"] for status, body in results if status == 201}) == 1
    assert scalar(db, "SELECT count(*) FROM orders.orders") == 1
    assert run_relay_function() == {"published": 1, "failed": 0, "parked": 0}
    assert sum(published_per_order(aws).values()) == 1
