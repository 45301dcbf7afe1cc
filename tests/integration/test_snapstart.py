"""SnapStart's runtime hooks (common.snapstart), run the way Lambda runs them: the
registered callables of ``snapshot_restore_py``, before-snapshot ones in reverse order of
registration, after-restore ones in order. A real PostgreSQL, real botocore and SQLAlchemy."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

snapshot_restore_py = pytest.importorskip("snapshot_restore_py")

pytestmark = pytest.mark.db


def take_snapshot() -> None:
    for func, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
        func(*args, **kwargs)


def restore() -> None:
    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        func(*args, **kwargs)


@pytest.fixture
def function(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The orders API's module imported (its hooks registered) and its container."""
    import orders.handlers.api  # noqa: F401  (registers the hooks at import)
    from common import aws, bootstrap

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "publishing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "publishing-secret")
    aws.renew()
    yield bootstrap.override(settings=settings)
    bootstrap.override()
    aws.renew()


def _backend_alive(engine: Any, pid: int) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).scalar()
        )


def test_every_handler_module_registers_the_hooks_once():
    from common import snapstart

    for module in ("orders.handlers.api", "inventory.handlers.reserve", "notifications.handlers.send_email"):
        __import__(module)
    befores = [f for f, _, _ in snapshot_restore_py.get_before_snapshot()]
    afters = [f for f, _, _ in snapshot_restore_py.get_after_restore()]
    assert befores.count(snapstart.before_snapshot) == 1
    assert afters.count(snapstart.after_restore) == 1


def test_the_snapshot_holds_no_database_connection(function, engine):
    # Given a function that has served a request: its pool keeps the connection open
    with function.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert function.engine.pool.checkedin() == 1 and _backend_alive(engine, pid)

    # When Lambda takes the snapshot
    take_snapshot()

    # Then the pool holds nothing and PostgreSQL has no session of that engine left
    assert (function.engine.pool.checkedin(), function.engine.pool.checkedout()) == (0, 0)
    deadline = time.monotonic() + 5
    while _backend_alive(engine, pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _backend_alive(engine, pid)


def test_the_statements_every_transaction_runs_are_compiled_before_the_snapshot(function):
    from common import inbox
    from common.events import EventMetadata, ShipmentDelivered
    from common.outbox import relay, writer

    # When Lambda takes the snapshot of a function that never ran a statement
    cache = function.engine._compiled_cache
    cache.clear()
    take_snapshot()
    primed = len(cache)
    assert primed >= len(writer.PRIMED_STATEMENTS + inbox.PRIMED_STATEMENTS + relay.PRIMED_STATEMENTS)

    # Then the first transaction after the restore compiles neither of them again
    restore()
    event = ShipmentDelivered(
        metadata=EventMetadata.new(correlation_id="c-1"),
        order_id=uuid.uuid4(),
        shipment_id=uuid.uuid4(),
        delivered_at=datetime.now(UTC),
    )
    with function.engine.begin() as conn:
        # (leased, as every function's unit of work writes its rows)
        writer.forget([writer.add_event(conn, event, lease=True)])
        assert inbox.mark_processed(conn, "snapstart-test", event.metadata.event_id)
    assert len(cache) == primed


def test_a_statement_compiled_before_the_first_connection_is_the_one_a_connected_engine_compiles(function):
    from common.outbox import writer

    # Given the snapshot's engine, which never connected (its dialect not initialised)
    statement, names = writer.PRIMED_STATEMENTS[0]
    take_snapshot()
    [before] = [c for c in function.engine._compiled_cache.values() if c.statement is statement]
    # When the restored function connects (and the dialect learns the server)
    with function.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    # Then the statement it compiles is the one primed
    fresh = statement.compile(dialect=function.engine.dialect, column_keys=sorted(names))
    assert str(before) == str(fresh)


def test_each_restore_draws_its_own_random_numbers():
    # Given the interpreter state a snapshot holds
    state = random.getstate()
    random.setstate(state)
    without_hooks = [random.random(), (random.setstate(state), random.random())[1]]
    # (without the hooks, every copy restored from it draws the same: the same retry jitter)
    assert without_hooks[0] == without_hooks[1]

    # When two environments are restored from it
    draws = []
    for _ in range(2):
        random.setstate(state)
        restore()
        draws.append(random.random())

    # Then they draw differently
    assert draws[0] != draws[1]


def test_a_restore_gets_a_new_pool_new_credentials_and_new_clients(function, monkeypatch):
    from common import aws, bootstrap

    # Given a snapshot taken after the function had built its clients with the
    # publishing environment's credentials
    client = function.events_client
    rds = aws.rds_client("us-east-1")
    session = aws.session()
    assert session.get_credentials().access_key == "publishing-key"
    take_snapshot()
    engine, pool = function.engine, function.engine.pool
    # (before-snapshot hooks run in reverse order of registration: one registered before
    # ours runs after it, and may well have resolved credentials again)
    session = aws.session()
    assert session.get_credentials().access_key == "publishing-key"

    # When an environment is restored where Lambda gives other credentials
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "restored-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "restored-secret")
    restore()

    # Then the engine (and its compiled statements) stays, with a new, empty pool
    deps = bootstrap.container()
    assert deps.engine is engine and deps.engine.pool is not pool
    assert deps.engine.pool.checkedin() == 0
    with deps.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    # and every AWS client is built again, from a new session holding the new credentials
    assert aws.session() is not session
    assert aws.session().get_credentials().access_key == "restored-key"
    assert deps.events_client is not client
    assert deps.events_client._request_signer._credentials.access_key == "restored-key"
    assert aws.rds_client("us-east-1") is not rds
    # while the service models parsed before the snapshot are kept
    assert aws.session().get_component("data_loader") is session.get_component("data_loader")


# ------------------------------------------------------------------ a fresh process

PROBE_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "EVENT_BUS_NAME": "orderflow-test",
    "JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
    "JWT_ISSUER": "https://issuer.example",
    "JWT_AUDIENCE": "orders",
}


def probe(code: str, database_url: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env.update(PROBE_ENV, DATABASE_URL=database_url)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_before_the_snapshot_the_functions_models_and_service_data_are_ready(db):
    out = probe(
        """
        import json, sys, snapshot_restore_py
        import orders.handlers.api
        from common import aws, events
        from common.bootstrap import container
        from orders.handlers.schemas import PlaceOrderRequest

        def deferred():
            pending, left = [events.CamelModel], []
            while pending:
                model = pending.pop()
                pending.extend(model.__subclasses__())
                left += [] if model.__pydantic_complete__ else [model.__name__]
            return sorted(left)

        before = deferred()
        container().events_client  # an init that built a client with the publishing credentials
        for func, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
            func(*args, **kwargs)
        loaded = {key[1] for key in aws.session().get_component("data_loader")._cache
                  if key[0] == "load_service_model"}
        print(json.dumps({
            "before": before, "after": deferred(),
            "body_built": PlaceOrderRequest.__pydantic_complete__,
            "loaded": sorted(loaded),
            "credentials_resolved": aws.session()._credentials is not None,
            "jwt": "jwt" in sys.modules and "cryptography" in sys.modules,
            "jwks_fetched": container().verifier._jwks.jwk_set_cache.get() is not None,
            "pool": container().engine.pool.checkedin(),
            "client_kept": "events_client" in container().__dict__,
        }))
        """,
        db,
    )
    # Before: the deferred validators of the events and bodies the function imported
    assert "OrderCreated" in out["before"] and "PlaceOrderRequest" in out["before"]
    # After: all of them built, the events API's model loaded, PyJWT imported
    assert out["after"] == [] and out["body_built"]
    assert "events" in out["loaded"]
    assert out["jwt"]
    # and nothing that must not be in a snapshot: no credentials, no keys, no connection
    assert not out["credentials_resolved"] and not out["client_kept"]
    assert not out["jwks_fetched"]
    assert out["pool"] == 0
