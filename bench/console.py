"""What the local console costs the suite: each page's latency against the API's own
``GET /orders/{orderId}``, measured in the same run on the same ``orderflow local``.

    .venv/bin/python bench/console.py [--orders 5] [--requests 30]

A suite on free ports (its embedded PostgreSQL in a temporary folder), a few orders
placed and settled, then each URL requested ``--requests`` times after 3 warm-ups; the
report is each one's median and its ratio to the API's. An open order page asks for
its live part every 1.5 s, the front page every 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the suite as the end-to-end tests start it

from tests.support.local_suite import LocalSuite, running  # noqa: E402


def timed_ms(url: str, headers: dict[str, str]) -> float:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        answer.read()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="orderflow-bench-console-") as state,
        running(LocalSuite(Path(state))) as suite,
    ):
        suite.stock("BENCH-1", on_hand=10 * args.orders)
        token = suite.token("bench", "bench@example.com")
        ids = [
            suite.place(token, [{"sku": "BENCH-1", "quantity": 1}]).body["orderId"]
            for _ in range(args.orders)
        ]
        for order_id in ids:
            suite.wait_settled(token, order_id)
        time.sleep(2)  # the last follow-up events handled: every page draws a whole journey
        order_id = ids[0]
        urls = {
            "API GET /orders/{orderId}": (
                f"{suite.api}/orders/{order_id}",
                {"Authorization": f"Bearer {token}"},
            ),
            "console: an order's page": (f"{suite.api}/console/orders/{order_id}", {}),
            "console: its live part": (f"{suite.api}/console/orders/{order_id}?partial=1", {}),
            "console: the front page": (f"{suite.api}/console/", {}),
        }
        medians = {}
        for name, (url, headers) in urls.items():
            for _ in range(3):
                timed_ms(url, headers)
            medians[name] = statistics.median(timed_ms(url, headers) for _ in range(args.requests))
        baseline = medians["API GET /orders/{orderId}"]
        for name, ms in medians.items():
            print(f"{name:<28} median {ms:7.1f} ms   {ms / baseline:4.1f}x the API's")
        suite.stop()


if __name__ == "__main__":
    main()
