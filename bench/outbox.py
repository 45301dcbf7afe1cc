"""Benchmark of the outbox under EventBridge faults, and of the relay's drain rate.

    .venv/bin/python bench/outbox.py [--posts 200] [--black-holed 20] [--backlog 10000] [--json PATH]

1. ``POST /orders`` (the real handler, the real boto3 client configuration from
   ``common.bootstrap``) with EventBridge healthy (moto's server), refusing (a closed
   loopback port) and black-holed (a loopback socket that accepts and never answers):
   p50/p99 per case.
   moto's server runs in a process of its own, as EventBridge is remote.
2. The relay draining a backlog of ``--backlog`` rows into moto's server, as a ratio to a
   bare loop of ``put_events`` batches of 10 of the same entries against the same server,
   measured in the same run (before and after the relay; the ratio uses their mean).

A script, not a test: nothing fails when a target is missed. Progress on stderr,
the report on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run as common_bench  # noqa: E402  (the same PostgreSQL, moto and JWKS helpers as bench/run.py)

from tests.support import network  # noqa: E402

DRAIN_TARGET = 0.8


def say(message: str) -> None:
    print(f"[bench/outbox] {message}", file=sys.stderr, flush=True)


def post_orders(url: str, endpoint: str, bus_url: str, tokens: Any, jwks: Any, n: int) -> dict[str, float]:
    from common import bootstrap
    from common.settings import Settings
    from orderflow.lambda_runtime import LambdaContext
    from orders.handlers.api import handler
    from tests.support import jwks as support

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    settings = Settings(
        DATABASE_URL=url,
        EVENT_BUS_NAME=common_bench.BUS,
        JWKS_URL=jwks.url,
        JWT_ISSUER=support.ISSUER,
        JWT_AUDIENCE=support.AUDIENCE,
        AWS_REGION="us-east-1",
    )
    bootstrap.override(settings=settings, events_client=bootstrap._client("events", settings))
    events = [common_bench.order_event(*tokens.customer()) for _ in range(n + 3)]
    latencies = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for i, event in enumerate(events):
            start = time.perf_counter()
            response = handler(event, LambdaContext(function_name="OrdersApiFunction"))
            elapsed = (time.perf_counter() - start) * 1000
            if response["statusCode"] != 201:
                raise RuntimeError(f"POST /orders answered {response['statusCode']}")
            if i >= 3:  # three warm-up requests
                latencies.append(elapsed)
    bootstrap.override()
    return {
        "p50_ms": common_bench.quantile(latencies, 0.5),
        "p99_ms": common_bench.quantile(latencies, 0.99),
        "max_ms": max(latencies),
        "n": len(latencies),
    }


def fill_backlog(url: str, rows: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE eventing.outbox"))
        # An OrderCreated-sized detail (~700 bytes) per row
        conn.execute(
            text(
                "INSERT INTO eventing.outbox (event_id, source, detail_type, detail, correlation_id)"
                " SELECT gen_random_uuid(), 'orders.service', 'OrderCreated',"
                " jsonb_build_object('orderId', gen_random_uuid(), 'customerId', 'bench-' || n,"
                "  'customerEmail', 'bench@example.com', 'total', '28.99', 'currency', 'USD',"
                "  'items', jsonb_build_array("
                "   jsonb_build_object('sku', 'SKU-1', 'quantity', 2, 'unitPrice', '12.50'),"
                "   jsonb_build_object('sku', 'SKU-2', 'quantity', 1, 'unitPrice', '3.99')),"
                "  'shippingAddress', jsonb_build_object('name', 'Ada Lovelace', 'line1', '1 Main St',"
                "   'city', 'London', 'postalCode', 'N1 9GU', 'country', 'GB'),"
                "  'metadata', jsonb_build_object('eventId', gen_random_uuid(), 'correlationId', 'c-' || n,"
                "   'causationId', null, 'timestamp', '2026-01-01T00:00:00Z', 'version', '1.0')),"
                " 'c-' || n FROM generate_series(1, :rows) AS n"
            ),
            {"rows": rows},
        )
    engine.dispose()


def bare_loop(client: Any, url: str) -> float:
    """Entries per second of a bare put_events loop, batches of 10, over the backlog's details."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        details = [
            json.dumps(d, separators=(",", ":"))
            for d in conn.execute(text("SELECT detail FROM eventing.outbox ORDER BY id")).scalars()
        ]
    engine.dispose()
    entries = [
        {
            "EventBusName": common_bench.BUS,
            "Source": "orders.service",
            "DetailType": "OrderCreated",
            "Detail": d,
        }
        for d in details
    ]
    start = time.perf_counter()
    for i in range(0, len(entries), 10):
        response = client.put_events(Entries=entries[i : i + 10])
        if response["FailedEntryCount"]:
            raise RuntimeError("the emulator refused entries")
    return len(entries) / (time.perf_counter() - start)


def relay_drain(client: Any, url: str, rows: int) -> float:
    from sqlalchemy import create_engine, text

    from common.bootstrap import call_bound_s
    from common.db import make_engine
    from common.outbox.relay import relay
    from common.publisher import EventBridgePublisher
    from common.settings import Settings

    engine = make_engine(Settings(DATABASE_URL=url))
    publisher = EventBridgePublisher(client, common_bench.BUS, call_bound_s=call_bound_s("events"))
    start = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        with cProfile.Profile() as profile:
            result = relay(engine, publisher)
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        result = relay(engine, publisher)
    elapsed = time.perf_counter() - start
    engine.dispose()
    if result.published != rows:
        raise RuntimeError(f"the relay published {result.published} of {rows}")
    check = create_engine(url)
    with check.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL")).scalar()
    check.dispose()
    if left:
        raise RuntimeError(f"{left} rows left unpublished")
    return rows / elapsed


@contextlib.contextmanager
def eventbridge_process() -> Any:
    """moto's server in a process of its own (EventBridge is remote: it must not share
    this process's GIL with the code measured), with the bus; yields its URL."""
    import socket
    import subprocess

    import boto3

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        boto3.client("events", endpoint_url=url, region_name="us-east-1").create_event_bus(
            Name=common_bench.BUS
        )
        yield url
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200, help="requests per case (healthy, refusing)")
    parser.add_argument("--black-holed", type=int, default=20, help="requests with EventBridge black-holed")
    parser.add_argument("--backlog", type=int, default=10_000, help="outbox rows for the drain")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()

    import boto3

    from common.observability import logger

    logger.setLevel("CRITICAL")  # the faults log a warning per request; the report is what counts
    results: dict[str, Any] = {"post_orders": {}}
    with (
        common_bench.database() as url,
        eventbridge_process() as bus_url,
        common_bench.jwks() as jwks,
    ):
        tokens = common_bench.Tokens(jwks)
        cases = {
            "healthy": (contextlib.nullcontext(bus_url), args.posts),
            "refusing": (network.refusing(), args.posts),
            "black-holed": (network.black_hole(), args.black_holed),
        }
        for name, (endpoint_cm, n) in cases.items():
            with endpoint_cm as endpoint:
                say(f"POST /orders, EventBridge {name}: {n} requests")
                results["post_orders"][name] = post_orders(url, endpoint, bus_url, tokens, jwks, n)

        from botocore.config import Config

        client = boto3.client(
            "events",
            endpoint_url=bus_url,
            region_name="us-east-1",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=0.5, read_timeout=1.0
            ),
        )
        say(f"drain: {args.backlog} rows")
        fill_backlog(url, args.backlog)
        bare_before = bare_loop(client, url)
        relay_rate = relay_drain(client, url, args.backlog)
        fill_backlog(url, args.backlog)
        bare_after = bare_loop(client, url)
        bare = (bare_before + bare_after) / 2
        results["drain"] = {
            "rows": args.backlog,
            "relay_per_s": relay_rate,
            "bare_loop_per_s_before": bare_before,
            "bare_loop_per_s_after": bare_after,
            "ratio": relay_rate / bare,
            "target": DRAIN_TARGET,
        }

    print("POST /orders (ms)           p50      p99      max      n")
    for name, r in results["post_orders"].items():
        print(
            f"  EventBridge {name:<12} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['max_ms']:8.1f} {r['n']:6d}"
        )
    d = results["drain"]
    verdict = "met" if d["ratio"] >= DRAIN_TARGET else "missed"
    print(
        f"relay drain of {d['rows']} rows: {d['relay_per_s']:.0f} rows/s; bare put_events loop "
        f"{d['bare_loop_per_s_before']:.0f} / {d['bare_loop_per_s_after']:.0f} entries/s (before / after); "
        f"ratio {d['ratio']:.2f} (target >= {DRAIN_TARGET}: {verdict})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
