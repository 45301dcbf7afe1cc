"""Throughput of InventoryFunction's reservations against a raw SQL baseline.

    .venv/bin/python bench/inventory.py [--events 2000] [--warmup 200] [--rounds 3]

One connection, in process, on a real PostgreSQL (``DATABASE_URL``'s server, else an
embedded one), each side on a fresh database with the same prepared events:

* handler:  ``inventory.handlers.reserve.handler(event, context)`` as Lambda calls it
  (Powertools logger, metrics and tracer, envelope and detail parsing, the use case,
  the unit of work, SQLAlchemy on pg8000, the pool's pre-ping);
* baseline: plain pg8000 doing the same transaction by hand: mark the event processed,
  lock the stock rows in SKU order, decide, record the order's outcome and its lines,
  add to ``reserved`` conditionally, insert the outbox row, commit.

Each side runs ``--rounds`` times, alternating; the best round counts (the commit's
fsync makes single rounds noisy). ``CPU here`` is this process's CPU time per event:
the layers' own cost, without PostgreSQL's. Progress goes
to stderr, the report to stdout. Target: the handler takes at most 1.5x the
baseline's time per event.
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


def run_handler(url: str, events: list[dict[str, Any]], warmup: int) -> tuple[float, float]:
    from common import bootstrap
    from common.settings import Settings
    from inventory.handlers.reserve import handler
    from orderflow.lambda_runtime import LambdaContext

    deps = bootstrap.override(settings=Settings(DATABASE_URL=url))
    context = LambdaContext(function_name="InventoryFunction")
    try:
        with quiet_stdout():
            for event in events[:warmup]:
                handler(event, context)
            start, cpu = time.perf_counter(), time.process_time()
            for event in events[warmup:]:
                result = handler(event, context)
                if result["handled"] != "RESERVED":
                    raise SystemExit(f"bench: unexpected {result}")
            return time.perf_counter() - start, time.process_time() - cpu
    finally:
        deps.engine.dispose()
        bootstrap.override()


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
    sides: dict[str, Callable[[str, list[dict[str, Any]], int], tuple[float, float]]] = {
        "handler": run_handler,
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
    ratio = per_event["handler"] / per_event["baseline"]
    figures = {
        "events": args.events,
        "handler_events_per_s": round(args.events / best["handler"], 1),
        "baseline_events_per_s": round(args.events / best["baseline"], 1),
        "handler_ms_per_event": round(per_event["handler"], 3),
        "baseline_ms_per_event": round(per_event["baseline"], 3),
        "handler_cpu_ms_per_event": round(best_cpu["handler"] / args.events * 1000, 3),
        "baseline_cpu_ms_per_event": round(best_cpu["baseline"] / args.events * 1000, 3),
        "ratio": round(ratio, 2),
        "target_ratio": TARGET,
        "within_target": ratio <= TARGET,
    }
    out = io.StringIO()
    out.write(
        f"InventoryFunction reservations, one connection, {args.events} events, best of {args.rounds}\n"
    )
    out.write(
        f"  handler   {figures['handler_events_per_s']:>9,.1f} events/s  "
        f"{figures['handler_ms_per_event']:.3f} ms/event  "
        f"(CPU here {figures['handler_cpu_ms_per_event']:.3f} ms)\n"
    )
    out.write(
        f"  baseline  {figures['baseline_events_per_s']:>9,.1f} events/s  "
        f"{figures['baseline_ms_per_event']:.3f} ms/event  "
        f"(CPU here {figures['baseline_cpu_ms_per_event']:.3f} ms)\n"
    )
    out.write(
        f"  ratio     {ratio:.2f}x time per event (target <= {TARGET}x): "
        f"{'OK' if ratio <= TARGET else 'OVER TARGET'}\n"
    )
    print(out.getvalue(), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
