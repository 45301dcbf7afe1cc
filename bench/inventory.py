"""Throughput of InventoryFunction's reservations against a raw SQL baseline, and the
CPU per event of SQS batches against the one-event invocation consumers had before.

    .venv/bin/python bench/inventory.py [--events 2000] [--warmup 200] [--rounds 3]

One connection, in process, on a real PostgreSQL (``DATABASE_URL``'s server, else an
embedded one), each side on a fresh database with the same prepared events:

* one-event: the invocation consumers had before issue 19, one EventBridge event per
  call (Powertools logger, metrics and tracer around envelope and detail parsing, the
  use case in its retried unit of work, publishing, a log line and a metric), rebuilt
  here from the same parts since the function no longer takes that event;
* batch-1, batch-10: ``inventory.handlers.reserve.handler(event, context)`` as Lambda
  calls it now, with SQS events of 1 and 10 records (the batch utility, per-record
  parsing, logs and metrics, the use case, the unit of work, SQLAlchemy on pg8000);
* baseline: plain pg8000 doing the same transaction by hand: mark the event processed,
  lock the stock rows in SKU order, decide, record the order's outcome and its lines,
  add to ``reserved`` conditionally, insert the outbox row, commit.

Each side runs ``--rounds`` times, alternating; the best round counts (the commit's
fsync makes single rounds noisy). ``CPU here`` is this process's CPU time per event:
the layers' own cost, without PostgreSQL's. Progress goes to stderr, the report to
stdout. Targets: batch-1 takes at most 1.5x the baseline's time per event; batch-10
at most 0.6x the one-event invocation's CPU per event.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the service's package: keep bench/ off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # tests.support: the same PostgreSQL helpers as the tests
for part in ("src", "services/common", "services/inventory"):
    sys.path.insert(1, str(ROOT / part))

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "inventory")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Orderflow")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here
os.environ.setdefault("LOG_LEVEL", "INFO")
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # embedded PostgreSQL, as root
warnings.filterwarnings("ignore", message="No application metrics to publish")

TARGET = 1.5
BATCH_TARGET = 0.6  # batch-10's CPU per event against the one-event invocation's
SKUS = [f"SKU-{n}" for n in range(1, 21)]


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepared_events(count: int) -> list[dict[str, Any]]:
    """OrderCreated deliveries of two items each, spread over 20 SKUs."""
    from common.events import EventMetadata, OrderCreated, OrderCreatedItem, ShippingAddress
    from common.money import Money
    from tests.support.events import eventbridge_event

    address = ShippingAddress(
        name="Ada Lovelace", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB"
    )
    events = []
    for n in range(count):
        skus = sorted({SKUS[n % len(SKUS)], SKUS[(n * 7 + 3) % len(SKUS)]})
        items = [
            OrderCreatedItem(sku=s, quantity=1 + n % 3, unit_price=Money.parse("2.50", "USD")) for s in skus
        ]
        order = OrderCreated(
            order_id=uuid.uuid4(),
            customer_id=f"customer-{n % 50}",
            customer_email="ada@example.com",
            items=items,
            total=Money.total((i.unit_price * i.quantity for i in items), "USD"),
            currency="USD",
            shipping_address=address,
            metadata=EventMetadata.new(f"bench-{n}"),
        )
        events.append(eventbridge_event(order))
    return events


def stock_up(url: str, per_sku: int) -> None:
    from sqlalchemy import create_engine, text

    from tests.support.postgres import truncate_all

    truncate_all(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO inventory.stock (sku, on_hand) VALUES (:sku, :n)"),
            [{"sku": s, "n": per_sku} for s in SKUS],
        )
        # Fresh statistics, as a long-running database would have.
        for table in (
            "inventory.stock",
            "inventory.order_outcomes",
            "inventory.reservations",
            "eventing.outbox",
            "eventing.processed_events",
        ):
            conn.execute(text(f"ANALYZE {table}"))
    engine.dispose()


def check(url: str, expected_events: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        outbox = conn.execute(
            text("SELECT count(*) FROM eventing.outbox WHERE detail_type = 'InventoryReserved'")
        )
        reserved = outbox.scalar_one()
        consistent = conn.execute(
            text(
                "SELECT bool_and(s.reserved = coalesce(r.total, 0)) FROM inventory.stock s LEFT JOIN "
                "(SELECT sku, sum(quantity) AS total FROM inventory.reservations GROUP BY sku) r USING (sku)"
            )
        ).scalar_one()
    engine.dispose()
    if reserved != expected_events or not consistent:
        raise SystemExit(
            f"bench: wrong result ({reserved} InventoryReserved of {expected_events}, "
            f"reserved consistent with reservations: {consistent})"
        )


# --- the function under test -------------------------------------------------------------


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Logs and EMF metrics are still formatted, as in Lambda, but not printed."""
    from common.observability import logger

    sink = open(os.devnull, "w")  # noqa: SIM115 - closed below
    handler = logger.registered_handler
    previous = handler.setStream(sink)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
        sink.close()


def _timed(
    url: str,
    invocations: list[Any],
    warmup: int,
    call: Callable[[Any, Any], Any],
    check_result: Callable[[Any], None],
) -> tuple[float, float]:
    from common import bootstrap
    from common.settings import Settings
    from orderflow.lambda_runtime import LambdaContext

    deps = bootstrap.override(settings=Settings(DATABASE_URL=url))
    context = LambdaContext(function_name="InventoryFunction")
    try:
        with quiet_stdout():
            for invocation in invocations[:warmup]:
                call(invocation, context)
            start, cpu = time.perf_counter(), time.process_time()
            for invocation in invocations[warmup:]:
                check_result(call(invocation, context))
            return time.perf_counter() - start, time.process_time() - cpu
    finally:
        deps.engine.dispose()
        bootstrap.override()


def one_event_handler() -> Callable[[dict[str, Any], Any], dict[str, str]]:
    """InventoryFunction's handler as it was before it took SQS batches (one event per
    invocation), from the same parts: what the batches are measured against."""
    from common.bootstrap import container
    from common.consumer import parse_event
    from common.db import retry_on_disconnect
    from common.events import OrderCancelled, OrderCreated, ShipmentDispatched
    from common.observability import logger, metrics, tracer
    from inventory.adapters.repository import InventoryUnitOfWork
    from inventory.handlers.reserve import METRICS
    from inventory.usecases import reserve_stock

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
        order = parse_event(event, (OrderCreated, OrderCancelled, ShipmentDispatched)).detail
        deps = container()
        engine = deps.engine
        result = retry_on_disconnect(lambda: reserve_stock(order, InventoryUnitOfWork(engine)), engine=engine)
        deps.publish_committed(result.outbox_ids, context)
        logger.info("order handled", extra={"order_id": str(order.order_id), "handled": result.handled.value})
        metrics.add_metric(name=METRICS[result.handled], unit="Count", value=1)
        return {"handled": result.handled.value}

    return handler


def _reserved(result: dict[str, Any]) -> None:
    if result.get("handled", "RESERVED") != "RESERVED" or result.get("batchItemFailures"):
        raise SystemExit(f"bench: unexpected {result}")


def run_one_event(url: str, events: list[dict[str, Any]], warmup: int) -> tuple[float, float]:
    return _timed(url, events, warmup, one_event_handler(), _reserved)


def run_batches(size: int) -> Callable[[str, list[dict[str, Any]], int], tuple[float, float]]:
    def run(url: str, events: list[dict[str, Any]], warmup: int) -> tuple[float, float]:
        from inventory.handlers.reserve import handler
        from tests.support.events import queue_arn, sqs_event

        arn = queue_arn("InventoryFunction")
        batches = [sqs_event(*events[i : i + size], source_arn=arn) for i in range(0, len(events), size)]
        return _timed(url, batches, warmup // size, handler, _reserved)

    return run


# --- the baseline: the same transaction in plain pg8000 -----------------------------------

MARK = (
    "INSERT INTO eventing.processed_events (consumer, event_id) VALUES ('inventory', %s) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)
LOCK = "SELECT sku, on_hand, reserved FROM inventory.stock WHERE sku = ANY(%s) ORDER BY sku FOR UPDATE"
DECIDE = (
    "INSERT INTO inventory.order_outcomes (order_id, outcome, event_id) VALUES (%s, %s, %s) "
    "ON CONFLICT (order_id) DO NOTHING RETURNING order_id"
)
LINE = "INSERT INTO inventory.reservations (order_id, sku, quantity) VALUES (%s, %s, %s)"
RESERVE = (
    "UPDATE inventory.stock SET reserved = reserved + %s, updated_at = now() "
    "WHERE sku = %s AND on_hand - reserved >= %s"
)
OUTBOX = (
    "INSERT INTO eventing.outbox (event_id, source, detail_type, detail, correlation_id) "
    "VALUES (%s, 'inventory.service', %s, %s, %s) RETURNING id"
)


def baseline_reserve(conn: Any, event: dict[str, Any]) -> str:
    detail = event["detail"]
    meta = detail["metadata"]
    event_id = uuid.UUID(meta["eventId"])
    order_id = uuid.UUID(detail["orderId"])
    cur = conn.cursor()
    try:
        cur.execute(MARK, (event_id,))
        if cur.fetchone() is None:
            conn.rollback()
            return "DUPLICATE_EVENT"
        requested: dict[str, int] = {}
        for item in detail["items"]:
            requested[item["sku"]] = requested.get(item["sku"], 0) + item["quantity"]
        cur.execute(LOCK, (sorted(requested),))
        available = {sku: on_hand - reserved for sku, on_hand, reserved in cur.fetchall()}
        short = [(s, q, available.get(s, 0)) for s, q in requested.items() if q > available.get(s, 0)]
        outcome = "FAILED" if short else "RESERVED"
        cur.execute(DECIDE, (order_id, outcome, event_id))
        if cur.fetchone() is None:
            conn.commit()
            return "ORDER_ALREADY_DECIDED"
        follow_up = {
            "metadata": {
                "eventId": str(uuid.uuid4()),
                "correlationId": meta["correlationId"],
                "causationId": meta["eventId"],
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "version": "1.0",
            },
            "orderId": detail["orderId"],
            "customerId": detail["customerId"],
        }
        if short:
            detail_type = "InventoryReservationFailed"
            follow_up["reason"] = "insufficient stock"
            follow_up["shortItems"] = [{"sku": s, "requested": q, "available": a} for s, q, a in short]
        else:
            detail_type = "InventoryReserved"
            cur.executemany(LINE, [(order_id, s, q) for s, q in requested.items()])
            for sku, quantity in sorted(requested.items()):
                cur.execute(RESERVE, (quantity, sku, quantity))
                if cur.rowcount != 1:
                    raise RuntimeError(f"conditional update refused {sku}")
            follow_up["items"] = [{"sku": s, "quantity": q} for s, q in requested.items()]
            follow_up["shippingAddress"] = detail["shippingAddress"]
        cur.execute(
            OUTBOX,
            (
                uuid.UUID(follow_up["metadata"]["eventId"]),
                detail_type,
                json.dumps(follow_up),
                meta["correlationId"],
            ),
        )
        conn.commit()
        return outcome
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()


def pg8000_connect(url: str) -> Any:
    import pg8000.dbapi
    from sqlalchemy.engine import make_url

    u = make_url(url)
    kwargs: dict[str, Any] = {"user": u.username or "postgres", "database": u.database}
    if u.password:
        kwargs["password"] = u.password
    if "unix_sock" in u.query:
        kwargs["unix_sock"] = u.query["unix_sock"]
    else:
        kwargs["host"] = u.host or "127.0.0.1"
        kwargs["port"] = u.port or 5432
    return pg8000.dbapi.connect(**kwargs)


def run_baseline(url: str, events: list[dict[str, Any]], warmup: int) -> tuple[float, float]:
    conn = pg8000_connect(url)
    try:
        for event in events[:warmup]:
            baseline_reserve(conn, event)
        start, cpu = time.perf_counter(), time.process_time()
        for event in events[warmup:]:
            if baseline_reserve(conn, event) != "RESERVED":
                raise SystemExit("bench: baseline did not reserve")
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        conn.close()


# --- the report ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000, help="timed events per round")
    parser.add_argument("--warmup", type=int, default=200, help="untimed events first, per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    from tests.support.postgres import fresh_database, server_url

    total = args.warmup + args.events
    say(f"preparing {total} OrderCreated events")
    events = prepared_events(total)
    per_sku = 10 * total  # enough stock for every order: every one is reserved
    if args.warmup % 10 or args.events % 10:
        raise SystemExit("bench: --events and --warmup must be multiples of 10 (the batch size)")
    sides: dict[str, Callable[[str, list[dict[str, Any]], int], tuple[float, float]]] = {
        "one-event": run_one_event,
        "batch-1": run_batches(1),
        "batch-10": run_batches(10),
        "baseline": run_baseline,
    }
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    with server_url() as base, fresh_database(base) as url:
        say(f"PostgreSQL ready ({'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded'})")
        for round_no in range(1, args.rounds + 1):
            for name, run in sides.items():
                stock_up(url, per_sku)
                seconds, cpu = run(url, events, args.warmup)
                check(url, total)
                best[name] = min(best.get(name, seconds), seconds)
                best_cpu[name] = min(best_cpu.get(name, cpu), cpu)
                say(
                    f"round {round_no} {name}: {args.events / seconds:,.0f} events/s "
                    f"({seconds / args.events * 1000:.3f} ms/event, "
                    f"CPU here {cpu / args.events * 1000:.3f} ms)"
                )

    per_event = {k: v / args.events * 1000 for k, v in best.items()}
    cpu = {k: v / args.events * 1000 for k, v in best_cpu.items()}
    ratio = per_event["batch-1"] / per_event["baseline"]
    cpu_ratio = {k: cpu[k] / cpu["one-event"] for k in ("batch-1", "batch-10")}
    figures = {
        "events": args.events,
        "rounds": args.rounds,
        **{f"{k}_events_per_s": round(args.events / v, 1) for k, v in best.items()},
        **{f"{k}_ms_per_event": round(v, 3) for k, v in per_event.items()},
        **{f"{k}_cpu_ms_per_event": round(v, 3) for k, v in cpu.items()},
        "ratio": round(ratio, 2),
        "target_ratio": TARGET,
        "batch_1_cpu_vs_one_event": round(cpu_ratio["batch-1"], 2),
        "batch_10_cpu_vs_one_event": round(cpu_ratio["batch-10"], 2),
        "batch_target": BATCH_TARGET,
        "within_target": ratio <= TARGET and cpu_ratio["batch-10"] <= BATCH_TARGET,
    }
    out = io.StringIO()
    out.write(
        f"InventoryFunction reservations, one connection, {args.events} events, best of {args.rounds}\n"
    )
    for name in sides:
        out.write(
            f"  {name:<10} {args.events / best[name]:>9,.1f} events/s  {per_event[name]:.3f} ms/event  "
            f"(CPU here {cpu[name]:.3f} ms"
            + (f", {cpu[name] / cpu['one-event']:.2f}x one-event" if name.startswith("batch") else "")
            + ")\n"
        )
    out.write(
        f"  ratio      {ratio:.2f}x batch-1 time per event against the baseline (target <= {TARGET}x): "
        f"{'OK' if ratio <= TARGET else 'OVER TARGET'}\n"
    )
    out.write(
        f"  batches    {cpu_ratio['batch-10']:.2f}x CPU per event at batch 10 against one-event "
        f"(target <= {BATCH_TARGET}x): {'OK' if cpu_ratio['batch-10'] <= BATCH_TARGET else 'OVER TARGET'}\n"
    )
    print(out.getvalue(), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
