"""A pooled connection is pinged only after it has been idle (common.db.ping_when_idle).

Real PostgreSQL; the connection is killed by the server (pg_terminate_backend) the way
a proxy timeout or a failover would end it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from common.db import is_connection_error, make_engine, ping_when_idle, retry_on_disconnect
from common.settings import Settings
from tests.integration.test_outbox_failures import backend_pid, terminate_backend

pytestmark = pytest.mark.db

IDLE_S = 0.3


@pytest.fixture
def engine(db: str) -> Any:
    engine = ping_when_idle(create_engine(db, pool_size=1, max_overflow=0), idle_s=IDLE_S)
    yield engine
    engine.dispose()


@pytest.fixture
def slow_engine(db: str) -> Any:
    """Pings only after a minute idle: every checkout in a test counts as "just used"."""
    engine = ping_when_idle(create_engine(db, pool_size=1, max_overflow=0), idle_s=60)
    yield engine
    engine.dispose()


def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced_when_dead(engine, db):
    # Given a pooled connection, idle longer than the threshold, that the server has killed
    killed = backend_pid(engine)
    terminate_backend(db, killed)
    time.sleep(IDLE_S * 1.5)

    # When the next transaction checks it out, Then the ping finds it dead and the pool
    # hands out a new one: the transaction itself never meets the dead connection
    with engine.begin() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert backend_pid(engine) != killed


def test_a_connection_used_just_now_is_not_pinged_and_retry_on_disconnect_covers_its_loss(slow_engine, db):
    engine = slow_engine
    # Given a connection used a moment ago, then killed
    killed = backend_pid(engine)
    terminate_backend(db, killed)

    # When a transaction runs at once, Then it meets the dead connection (no ping spent on it)
    with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    assert is_connection_error(raised.value)

    # And run as every transaction is, with retry_on_disconnect, it succeeds on a new one
    terminate_backend(db, backend_pid(engine))

    def select_one() -> int:
        with engine.begin() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())

    assert retry_on_disconnect(select_one, engine=engine, base_delay=0.001) == 1


def test_the_functions_engine_pings_when_idle(db):
    engine = make_engine(Settings(DATABASE_URL=db))
    try:
        assert engine.pool._pre_ping is False
        killed = backend_pid(engine)
        terminate_backend(db, killed)
        time.sleep(1.2)  # past PING_AFTER_IDLE_S
        assert backend_pid(engine) != killed
    finally:
        engine.dispose()
