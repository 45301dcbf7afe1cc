"""Every connection the functions open carries its time limits, so no bug can pin one."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from common.db import make_engine
from common.settings import Settings

pytestmark = [pytest.mark.db]


def test_connections_start_with_the_configured_limits(db):
    engine = make_engine(Settings(DATABASE_URL=db))
    try:
        with engine.connect() as conn:
            shown = [
                conn.execute(text(f"SHOW {name}")).scalar_one()
                for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
            ]
    finally:
        engine.dispose()
    assert shown == ["10s", "5s", "10s"]


def test_a_statement_past_its_timeout_is_cancelled(db):
    engine = make_engine(Settings(DATABASE_URL=db, DB_STATEMENT_TIMEOUT_MS=200))
    try:
        started = time.monotonic()
        with pytest.raises(DBAPIError, match="57014"), engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 2
    finally:
        engine.dispose()


def test_a_transaction_left_idle_is_ended_by_the_server(db):
    engine = make_engine(Settings(DATABASE_URL=db, DB_IDLE_IN_TRANSACTION_TIMEOUT_MS=300))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # a transaction is open now
            time.sleep(1.0)
            with pytest.raises(DBAPIError):
                conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
