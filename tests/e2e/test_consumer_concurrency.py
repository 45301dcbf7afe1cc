"""End-to-end: ``orderflow local --consumer-concurrency 2`` runs two containers per
consumer, each polling the consumer's queue, and every order still goes through once."""

from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from orderflow.template import functions
from tests.support.local_suite import LocalSuite, running, wait_for
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.db


def containers_of(suite: LocalSuite) -> dict[str, list[psutil.Process]]:
    """The suite's function containers, by function (their AWS_LAMBDA_FUNCTION_NAME)."""
    found: dict[str, list[psutil.Process]] = {}
    for process in suite.descendants():
        with contextlib.suppress(psutil.Error):
            name = process.environ().get("AWS_LAMBDA_FUNCTION_NAME")
            if name:
                found.setdefault(name, []).append(process)
    return found


def test_two_containers_per_consumer_take_batches_and_each_order_goes_through_once(
    database_url: str, tmp_path: Path
) -> None:
    consumers = sorted(f for f, fn in functions().items() if fn.queues)
    with fresh_database(database_url) as url:
        suite = LocalSuite(
            tmp_path / "state",
            database_url=url,
            extra_args=("--relay-every", "1", "--consumer-concurrency", "2"),
        )
        with running(suite):
            for function_id in consumers:
                assert f"{function_id}#2 started" in suite.log
            containers = containers_of(suite)
            assert {f: len(c) for f, c in containers.items() if f in consumers} == dict.fromkeys(consumers, 2)
            cpu_before = {p.pid: sum(p.cpu_times()[:2]) for c in containers.values() for p in c}
            sku = f"E2E-{uuid.uuid4().hex[:8].upper()}"
            suite.stock(sku, on_hand=20)
            customer = f"e2e-{uuid.uuid4().hex[:10]}"
            email = f"{customer}@example.com"
            token = suite.token(customer, email)
            with ThreadPoolExecutor(8) as pool:
                placed = list(
                    pool.map(lambda _: suite.place(token, [{"sku": sku, "quantity": 1}]), range(16))
                )
            assert {p.status for p in placed} == {201}
            settled = [suite.wait_settled(token, p.body["orderId"])["status"] for p in placed]
            assert settled == ["SHIPPING"] * 16
            # each reserved once, each confirmed by one email
            assert suite.inventory(sku)["reserved"] == 16
            emails = wait_for(lambda: suite.emails_to(email), lambda m: len(m) >= 16, 60, "16 emails", suite)
            subjects = [m["subject"] for m in emails]
            assert len(subjects) == len(set(subjects)) == 16  # one per order, none twice
            # and both of InventoryFunction's containers did some of the work
            busy = [sum(p.cpu_times()[:2]) - cpu_before[p.pid] for p in containers["InventoryFunction"]]
            assert all(seconds > 0.02 for seconds in busy), busy
            code, alive = suite.stop()
            assert code == 0 and not alive, suite.log
