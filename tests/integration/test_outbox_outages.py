"""The outbox under real outages: EventBridge black-holed, refusing, throttling, down for
long, refusing one entry for good; relays racing the fast path. Real PostgreSQL, moto,
loopback sockets for the network faults, and the real boto3 client configuration.

Every test counts what reached the bus: each event exactly once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from common import bootstrap
from common.outbox.relay import publish_committed, relay
from common.outbox.tables import outbox
from common.outbox.writer import add_event
from common.publisher import EventBridgePublisher
from tests.integration.test_outbox_failures import (
    ORDER,
    make_due,
    order_created_event,
    published_per_order,
    run_relay_function,
    scalar,
)
from tests.support import network
from tests.support.aws import FlakyEvents

pytestmark = [pytest.mark.db, pytest.mark.aws]


class IdleInTransactionWatch:
    """Polls pg_stat_activity: the longest any other session of this database sat idle in transaction."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url, isolation_level="AUTOCOMMIT")
        self._stop = threading.Event()
        self._started = threading.Event()
        self.longest_s = 0.0
        self.samples = 0
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with self._engine.connect() as conn:
            while not self._stop.is_set():
                longest = conn.execute(
                    text(
                        "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0) "
                        "FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND state = 'idle in transaction'"
                    )
                ).scalar_one()
                self.longest_s = max(self.longest_s, float(longest))
                self.samples += 1
                self._started.set()
                time.sleep(0.02)

    def __enter__(self) -> IdleInTransactionWatch:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        time.sleep(0.05)  # one more sample after the last request
        self._stop.set()
        self._thread.join()
        self._engine.dispose()


@pytest.fixture
def flaky(aws: Any) -> FlakyEvents:
    return FlakyEvents(aws.events)


@pytest.fixture
def flaky_container(catalog: Any, settings: Any, aws: Any, flaky: FlakyEvents) -> Iterator[Any]:
    deps = bootstrap.override(
        settings=settings, events_client=flaky, publisher=EventBridgePublisher(flaky, aws.name)
    )
    yield deps
    bootstrap.override()


# --- the request path is bounded ---------------------------------------------------------------


@pytest.mark.parametrize("fault", ["black_hole", "refusing", "throttling"])
def test_post_orders_answers_within_2s_and_holds_no_transaction_whatever_eventbridge_does(
    fault, orders_api, catalog, settings, aws, db, monkeypatch
):
    with getattr(network, fault)() as endpoint:
        # Given the functions' own EventBridge client (timeouts, one attempt) pointed at the fault
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        client = bootstrap._client("events", settings)
        bootstrap.override(settings=settings, events_client=client)
        try:
            with IdleInTransactionWatch(db) as watch:
                # When a customer places orders
                timings = []
                for _ in range(2):
                    started = time.monotonic()
                    placed = orders_api.post("/orders", ORDER)
                    timings.append(time.monotonic() - started)
                    assert placed.status == 201, placed.body
        finally:
            bootstrap.override()

    # Then each 201 came within 2 s, and no session sat idle in a transaction for 1 s
    assert max(timings) < 2.0, timings
    assert watch.samples > 1
    assert watch.longest_s < 1.0, watch.longest_s
    # And the rows wait, unclaimed, for the relay, which publishes each once
    assert (
        scalar(
            db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL AND claimed_until IS NULL"
        )
        == 2
    )
    bootstrap.override(settings=settings, events_client=aws.events)
    try:
        assert run_relay_function() == {"published": 2, "failed": 0, "parked": 0}
    finally:
        bootstrap.override()
    assert sorted(published_per_order(aws).values()) == [1, 1]


# --- no row is ever abandoned --------------------------------------------------------------------


def test_a_long_outage_then_recovery_publishes_everything_exactly_once(
    orders_api, flaky_container, flaky, aws, db
):
    # Given 50 orders placed while PutEvents fails
    flaky.raise_calls = 10**6
    order_ids = [orders_api.post("/orders", ORDER).body["orderId"] for _ in range(50)]

    # When 30 relay runs fail too
    for _ in range(30):
        result = run_relay_function()
        assert result["published"] == 0 and result["parked"] == 0
    assert scalar(db, "SELECT max(attempts) FROM eventing.outbox") >= 30  # the oldest, tried every run

    # Then, EventBridge back, the next run publishes every event once; none parked, none left
    flaky.raise_calls = 0
    assert run_relay_function() == {"published": 50, "failed": 0, "parked": 0}
    assert published_per_order(aws) == Counter(dict.fromkeys(order_ids, 1))
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 0
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE parked_at IS NOT NULL") == 0


def test_throttling_of_30_percent_of_entries_delays_but_loses_and_parks_nothing(
    orders_api, flaky_container, flaky, aws, db
):
    flaky.raise_calls = 10**6
    order_ids = [orders_api.post("/orders", ORDER).body["orderId"] for _ in range(40)]
    flaky.raise_calls = 0

    # When 30 % of entries are refused with ThrottlingException on every call, for ten runs
    flaky.refuse_code, flaky.refuse_fraction = "ThrottlingException", 0.3
    seen: Counter[str] = Counter()
    for _ in range(10):
        result = run_relay_function()
        assert result["parked"] == 0
        seen += published_per_order(aws)
        make_due(db)  # a minute passes between scheduled runs
    # And then throttling ends
    flaky.refuse_fraction = 0.0
    for _ in range(3):
        run_relay_function()
        seen += published_per_order(aws)
        make_due(db)

    assert seen == Counter(dict.fromkeys(order_ids, 1))
    assert (
        scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL OR parked_at IS NOT NULL")
        == 0
    )
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE last_error LIKE 'ThrottlingException%'") > 0


def test_an_oversized_row_is_parked_with_its_reason_and_a_metric_while_the_others_flow(
    orders_api, flaky_container, flaky, aws, db, capsys
):
    flaky.raise_calls = 10**6
    order_ids = [orders_api.post("/orders", ORDER).body["orderId"] for _ in range(15)]
    flaky.raise_calls = 0
    # Given a row EventBridge can never take (over 256 KiB), older than all but five
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE eventing.outbox SET id = id + 1000 "
                "WHERE id > (SELECT min(id) + 4 FROM eventing.outbox)"
            )
        )
        big = order_created_event(0)
        conn.execute(
            outbox.insert().values(
                id=6,
                event_id=big.metadata.event_id,
                source="orders.service",
                detail_type="OrderCreated",
                detail={"blob": "x" * 300_000},
                correlation_id="corr-big",
            )
        )
    engine.dispose()
    capsys.readouterr()

    # When one relay run goes
    assert run_relay_function() == {"published": 15, "failed": 0, "parked": 1}

    # Then the others all went out once, the big one is parked with its reason
    assert published_per_order(aws) == Counter(dict.fromkeys(order_ids, 1))
    assert scalar(db, "SELECT parked_reason FROM eventing.outbox WHERE id = 6").startswith("EntryTooLarge")
    # And the run's EMF metrics count it, and the rows parked now
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [metrics] = [m for m in emf if "OutboxParked" in m]
    assert metrics["OutboxParked"] == [1.0] and metrics["OutboxParkedRows"] == [1.0]
    assert metrics["OutboxPublished"] == [15.0]
    # And the parked row is never retried by itself
    make_due(db)
    assert run_relay_function() == {"published": 0, "failed": 0, "parked": 0}


# --- racing --------------------------------------------------------------------------------------


def test_two_relays_and_the_fast_path_racing_over_500_rows_publish_each_once(db, aws):
    events = [order_created_event(n) for n in range(500)]
    setup = create_engine(db)
    with setup.begin() as conn:
        ids = [add_event(conn, e) for e in events]
    setup.dispose()
    start = threading.Barrier(3)

    def one_relay() -> int:
        engine = create_engine(db, pool_size=1, max_overflow=0)
        try:
            start.wait()
            return relay(engine, EventBridgePublisher(aws.events, aws.name), claim_size=20).published
        finally:
            engine.dispose()

    def fast_path() -> int:
        # Publishing after commit, ten rows at a time, newest first (most contended with relays)
        engine = create_engine(db, pool_size=1, max_overflow=0)
        published = 0
        try:
            start.wait()
            for i in range(len(ids) - 10, -1, -10):
                result = publish_committed(
                    engine, EventBridgePublisher(aws.events, aws.name), ids[i : i + 10], budget_s=1.8
                )
                published += result.published if result else 0
            return published
        finally:
            engine.dispose()

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(one_relay), pool.submit(one_relay), pool.submit(fast_path)]
        counts = [f.result() for f in futures]

    assert sum(counts) == 500
    assert counts[2] > 0  # the fast path did take part
    delivered = Counter(e["detail"]["metadata"]["eventId"] for e in aws.drain("order-created"))
    assert delivered == Counter({str(e.metadata.event_id): 1 for e in events})
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 0


# --- trace header ----------------------------------------------------------------------------------


def test_the_writers_trace_header_is_kept_and_sent_by_the_relay(
    orders_api, flaky_container, flaky, aws, db, monkeypatch
):
    header = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Parent=53995c3f42cd8ad8;Sampled=1"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    flaky.raise_calls = 1
    assert orders_api.post("/orders", ORDER).status == 201
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-00000000-relay;Sampled=0")
    sent: list[dict[str, Any]] = []
    real_put = flaky.put_events

    def recording(Entries: list[dict[str, Any]]) -> dict[str, Any]:
        sent.extend(Entries)
        return real_put(Entries=Entries)

    flaky.put_events = recording  # type: ignore[method-assign]
    assert run_relay_function()["published"] == 1
    assert [e["TraceHeader"] for e in sent] == [header]
    assert scalar(db, "SELECT trace_header FROM eventing.outbox") == header
