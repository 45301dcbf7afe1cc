"""Benchmark of the whole local suite (``orderflow local``), driven over HTTP.

    .venv/bin/python bench/local.py [--duration 30] [--clients 1,4,16] [--json FILE]
                                    [--paced 10] [--paced-clients 4]
                                    [--relay-every 1] [--consumer-concurrency 1]
                                    [--profile DIR] [--log FILE]

It starts ``orderflow local`` itself (a subprocess, as tests/e2e do) on free ports,
on a fresh database of ``DATABASE_URL``'s server, else of an embedded PostgreSQL
started for the run, seeds eight products with plenty of stock, warms up, and then
first a paced row (``--paced`` orders/s in all, shared by ``--paced-clients`` clients
on one schedule: the latency at a steady load below saturation), then
for each client count runs that many threads placing orders (two items each, each
client with a customer token of its own, urllib to loopback) for ``--duration``
seconds, then waits (at most 45 s) for the orders to ship. It reports:

* orders/s: ``201`` answers per second over the window;
* POST latency, and the time from sending ``POST /orders`` to ``SHIPPING`` at p50 and
  p99, taken from OrderStatusFunction's log line (``--json-logs``) that moved the
  order to ``SHIPPING``: no polling adds load;
* the PostgreSQL connections of the suite's database at peak, sampled every 100 ms
  from ``pg_stat_activity`` (client backends, the sampler's own excluded): one per
  function at most;
* CPU seconds per process over the window (the suite's own process, each function,
  the PostgreSQL backends), to show where the time goes.

``--profile DIR`` runs every function under cProfile (``ORDERFLOW_PROFILE``, see
src/orderflow/lambda_bootstrap/bootstrap.py) and leaves ``DIR/<Function>.prof`` (wall
time), ``DIR/AwsEmulator.prof`` (moto's server) and ``DIR/OrderflowLocal.prof`` (the
gateway, pollers and pumps of ``orderflow local``), those two in CPU time.
A script, not a test: nothing fails when a number is poor. About 3 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.local_suite import ADDRESS, LocalSuite, http, running  # noqa: E402
from tests.support.postgres import fresh_database, server_url  # noqa: E402

SKUS = [f"BENCH-{i}" for i in range(8)]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class ConnectionSampler(threading.Thread):
    """Connections to the suite's database, every 100 ms, for the whole run."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="pg-sampler")
        from sqlalchemy import create_engine

        self.engine = create_engine(url, pool_size=1)
        self.stop = threading.Event()
        self.peak = 0
        self.phase_peak = 0
        self.samples = 0
        self.backends: set[int] = set()
        self.peak_rows: list[list[str]] = []

    def run(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT pid, backend_start, client_port, state, left(query, 60) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"  # not autovacuum's workers
        )
        with self.engine.connect() as conn:
            while not self.stop.wait(0.1):
                rows = conn.execute(query).all()
                conn.rollback()
                pids = [r[0] for r in rows]
                self.samples += 1
                self.backends.update(pids)
                if len(pids) > self.peak:
                    self.peak_rows = [[str(v) for v in r] for r in rows]
                self.peak = max(self.peak, len(pids))
                self.phase_peak = max(self.phase_peak, len(pids))

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.engine.dispose()


def suite_processes(suite: LocalSuite, backends: set[int]) -> dict[str, list[psutil.Process]]:
    """The suite's processes by role: its own, each function's, PostgreSQL's backends."""
    assert suite.process is not None
    main = psutil.Process(suite.process.pid)
    found: dict[str, list[psutil.Process]] = {"orderflow local (gateway, pollers)": [main]}
    for child in main.children(recursive=True):
        try:
            if "orderflow.emulator" in child.cmdline():
                name = "AWS emulator (moto)"
            else:
                name = child.environ().get("ORDERFLOW_FUNCTION", child.name())
        except psutil.Error:
            continue
        found.setdefault(name, []).append(child)
    for pid in backends:
        with contextlib.suppress(psutil.Error):
            found.setdefault("PostgreSQL backends", []).append(psutil.Process(pid))
    return found


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for role, procs in processes.items():
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        totals[role] = total
    return totals


def shipped_at(lines: list[str]) -> dict[str, float]:
    """Order id -> when OrderStatusFunction moved it to SHIPPING (epoch seconds)."""
    found = {}
    for line in lines:
        if '"SHIPPING"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("function") == "OrderStatusFunction" and record.get("status") == "SHIPPING":
            stamp = datetime.strptime(record["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z")
            found[record["order_id"]] = stamp.timestamp()
    return found


def timeline(lines: list[str], sent: dict[str, float]) -> dict[str, float]:
    """Median time from sending POST /orders to each step an order's log lines show."""
    first: dict[tuple[str, str], float] = {}
    for line in lines:
        if '"order_id"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        order_id = record.get("order_id")
        if order_id not in sent:
            continue
        step = f"{record.get('function')}: {record.get('message')}"
        if record.get("status"):
            step += f" -> {record['status']}"
        stamp = datetime.strptime(record["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
        first.setdefault((order_id, step), stamp)
    deltas: dict[str, list[float]] = {}
    for (order_id, step), stamp in first.items():
        deltas.setdefault(step, []).append(stamp - sent[order_id])
    medians = {step: round(1000 * statistics.median(d), 1) for step, d in deltas.items()}
    return dict(sorted(medians.items(), key=lambda kv: kv[1]))


def run_level(
    suite: LocalSuite, clients: int, duration_s: float, tokens: list[str], rate: float = 0.0
) -> list[dict[str, Any]]:
    """``clients`` threads placing orders for ``duration_s``: as fast as each can, or, with
    ``rate``, together at ``rate`` orders/s, each taking the next slot of one shared
    schedule (so a slow answer does not lower the rate while another client is free)."""
    placed: list[dict[str, Any]] = []
    lock = threading.Lock()
    began_at = time.monotonic()
    stop_at = began_at + duration_s
    slots = itertools.count()

    def client(token: str) -> None:
        rng = random.Random()
        while time.monotonic() < stop_at:
            if rate:
                with lock:
                    slot = began_at + next(slots) / rate
                if slot >= stop_at:
                    return
                time.sleep(max(0.0, slot - time.monotonic()))
            items = [{"sku": sku, "quantity": 1} for sku in rng.sample(SKUS, 2)]
            sent = time.time()
            began = time.perf_counter()
            try:
                answer = http(
                    "POST",
                    f"{suite.api}/orders",
                    token=token,
                    body={"items": items, "shippingAddress": ADDRESS},
                )
                status, body = answer.status, answer.body
            except OSError as exc:  # counted as an error, the client goes on
                status, body = 0, {"error": repr(exc)}
            took = time.perf_counter() - began
            with lock:
                placed.append(
                    {
                        "sent": sent,
                        "latency": took,
                        "status": status,
                        "orderId": body.get("orderId") if isinstance(body, dict) else None,
                        "error": body.get("error") if status != 201 and isinstance(body, dict) else None,
                    }
                )

    threads = [threading.Thread(target=client, args=(tokens[i],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return placed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds per client count")
    parser.add_argument("--clients", default="1,4,16", help="client counts, comma-separated")
    parser.add_argument("--relay-every", type=float, default=1.0, help="the suite's relay period (s)")
    parser.add_argument(
        "--paced", type=float, default=10, help="first a row at PACED orders/s in all (0: none)"
    )
    parser.add_argument(
        "--consumer-concurrency", type=int, default=1, help="the suite's containers per consumer"
    )
    parser.add_argument("--paced-clients", type=int, default=4, help="clients sharing the paced row")
    parser.add_argument("--drain", type=float, default=45, help="max seconds to wait for shipping")
    parser.add_argument("--profile", help="directory for one cProfile dump per function")
    parser.add_argument("--json", help="write every number to this file")
    parser.add_argument("--log", help="write the suite's log (JSON lines) to this file")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        os.environ["ORDERFLOW_PROFILE"] = str(Path(args.profile).resolve())
    results: dict[str, Any] = {
        "levels": [],
        "relayEverySeconds": args.relay_every,
        "consumerConcurrency": args.consumer_concurrency,
        "durationSeconds": args.duration,
        "cpus": os.cpu_count(),
    }
    with (
        server_url() as base,
        fresh_database(base) as url,
        tempfile.TemporaryDirectory(prefix="orderflow-bench-") as state,
    ):
        suite = LocalSuite(
            Path(state),
            database_url=url,
            extra_args=(
                "--relay-every",
                str(args.relay_every),
                "--consumer-concurrency",
                str(args.consumer_concurrency),
                "--json-logs",
            ),
        )
        started = time.monotonic()
        with running(suite, timeout_s=120):
            results["startSeconds"] = round(time.monotonic() - started, 2)
            functions = sum(1 for line in suite.lines if "started (cold start" in line)
            log(f"suite ready in {results['startSeconds']} s ({functions} functions) on {suite.api}")
            sampler = ConnectionSampler(url)
            sampler.start()
            for sku in SKUS:
                suite.stock(sku, on_hand=10_000_000, price="9.99")
            tokens = [
                suite.token(f"bench-{uuid.uuid4().hex[:8]}", f"bench{i}@example.com")
                for i in range(max(levels))
            ]
            run_level(suite, 1, 3, tokens)  # warm-up: JWKS fetched, connections open
            time.sleep(2)

            rows = [("paced", args.paced_clients, args.paced)] if args.paced else []
            rows += [(str(c), c, 0.0) for c in levels]
            for label, clients, rate in rows:
                log(f"{label}: {clients} client(s) for {args.duration:.0f} s ...")
                sampler.phase_peak = 0
                procs = suite_processes(suite, sampler.backends)
                cpu_before = cpu_seconds(procs)
                placed = run_level(suite, clients, args.duration, tokens, rate)
                cpu_window = {
                    k: v - cpu_before.get(k, 0.0)
                    for k, v in cpu_seconds(suite_processes(suite, sampler.backends)).items()
                }
                ok = [p for p in placed if p["status"] == 201]
                wanted = {p["orderId"] for p in ok}
                drain_until = time.monotonic() + args.drain
                while time.monotonic() < drain_until and not wanted <= shipped_at(suite.lines).keys():
                    time.sleep(0.5)
                shipped = shipped_at(suite.lines)
                to_ship = [shipped[p["orderId"]] - p["sent"] for p in ok if p["orderId"] in shipped]
                level = {
                    "clients": label if rate == 0 else f"{clients} @{rate:g}/s",
                    "errorKinds": sorted({str(p["error"])[:80] for p in placed if p["status"] != 201}),
                    "orders": len(ok),
                    "errors": len(placed) - len(ok),
                    "ordersPerSecond": round(len(ok) / args.duration, 1),
                    "postP50Ms": round(1000 * (pct([p["latency"] for p in ok], 50) or 0), 1),
                    "postP99Ms": round(1000 * (pct([p["latency"] for p in ok], 99) or 0), 1),
                    "shipped": len(to_ship),
                    "toShippingP50Ms": round(1000 * (pct(to_ship, 50) or 0), 1),
                    "toShippingP99Ms": round(1000 * (pct(to_ship, 99) or 0), 1),
                    "pgConnectionsPeak": sampler.phase_peak,
                    "timelineP50Ms": timeline(suite.lines, {p["orderId"]: p["sent"] for p in ok}),
                    "cpuSecondsInWindow": {
                        k: round(v, 2) for k, v in sorted(cpu_window.items(), key=lambda kv: -kv[1])
                    },
                }
                results["levels"].append(level)
                log(f"  {level['ordersPerSecond']} orders/s, shipped {level['shipped']}/{level['orders']}")
            sampler.close()
            code, alive = suite.stop()
            results["stopExitCode"], results["leftRunning"] = code, len(alive)
            if args.log:
                Path(args.log).write_text(suite.log + "\n")
        results["pgConnectionsPeak"] = sampler.peak
        results["pgAtPeak"] = sampler.peak_rows
        results["pgSamples"] = sampler.samples
        results["functions"] = functions

    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def print_table(results: dict[str, Any]) -> None:
    print(
        f"\norderflow local, {results['cpus']} CPUs, relay every {results['relayEverySeconds']} s, "
        f"{results['durationSeconds']:.0f} s per row, started in {results['startSeconds']} s"
    )
    head = (
        f"{'clients':>9} {'orders/s':>9} {'orders':>7} {'err':>4} {'POST p50':>9} {'POST p99':>9} "
        f"{'→SHIPPING p50':>14} {'p99':>9} {'shipped':>8} {'PG conns':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results["levels"]:
        print(
            f"{r['clients']:>9} {r['ordersPerSecond']:>9} {r['orders']:>7} {r['errors']:>4} "
            f"{r['postP50Ms']:>7.0f}ms {r['postP99Ms']:>7.0f}ms {r['toShippingP50Ms']:>12.0f}ms "
            f"{r['toShippingP99Ms']:>7.0f}ms {r['shipped']:>8} {r['pgConnectionsPeak']:>9}"
        )
    print(
        f"PostgreSQL connections at peak over the run: {results['pgConnectionsPeak']} "
        f"({results['pgSamples']} samples; {results['functions']} functions); "
        f"stop: exit {results['stopExitCode']}, {results['leftRunning']} process(es) left"
    )
    for r in results["levels"]:
        if r["errorKinds"]:
            print(f"errors with {r['clients']} client(s): {r['errorKinds']}")
    if results["pgConnectionsPeak"] > results["functions"]:
        print("connections at the peak (pid, backend_start, client_port, state, query):")
        for row in results["pgAtPeak"]:
            print("   ", " | ".join(row))
    print("\nWhere an order's time goes: median ms from sending POST /orders to each logged step")
    steps = sorted(
        {k for r in results["levels"] for k in r["timelineP50Ms"]},
        key=lambda k: results["levels"][-1]["timelineP50Ms"].get(k, 0),
    )
    print(f"{'step':<70}" + "".join(f"{r['clients']:>9}" for r in results["levels"]))
    for step in steps:
        print(
            f"{step[:69]:<70}"
            + "".join(f"{r['timelineP50Ms'].get(step, 0):>9.0f}" for r in results["levels"])
        )
    print("\nCPU seconds per process during each window (where the time goes):")
    roles = list(results["levels"][-1]["cpuSecondsInWindow"])
    print(f"{'process':<42}" + "".join(f"{r['clients']:>9}" for r in results["levels"]))
    for role in roles:
        print(
            f"{role:<42}"
            + "".join(f"{r['cpuSecondsInWindow'].get(role, 0):>9.1f}" for r in results["levels"])
        )
    total = [sum(r["cpuSecondsInWindow"].values()) for r in results["levels"]]
    print(f"{'total':<42}" + "".join(f"{t:>9.1f}" for t in total))


if __name__ == "__main__":
    raise SystemExit(main())
