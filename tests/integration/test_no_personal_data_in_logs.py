"""A database error with a customer's email and address in its bound parameters
reaches the log without them (``hide_parameters`` on every engine)."""

from __future__ import annotations

import copy
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
ORDER: dict[str, Any] = json.loads((ROOT / "tests/fixtures/place_order.json").read_text())
EMAIL = "leak-canary-7f3a@example.com"
STREET = "221B Canary Street"


@pytest.fixture
def orders_refused(engine: Any) -> Any:
    """Every INSERT into orders.orders fails, with a message that names no row."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION orders.refuse_order() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'orders are closed for this test'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse_order BEFORE INSERT ON orders.orders "
                "FOR EACH ROW EXECUTE FUNCTION orders.refuse_order()"
            )
        )
    yield
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_order ON orders.orders"))
        conn.execute(text("DROP FUNCTION orders.refuse_order()"))


@pytest.fixture
def captured_log() -> Any:
    """Everything the functions' Powertools logger writes, formatted as in Lambda."""
    from common.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    yield stream
    logger._logger.removeHandler(handler)


def test_a_failed_insert_logs_neither_email_nor_address(
    orders_api, catalog, mint, orders_refused, captured_log
):
    body = copy.deepcopy(ORDER)
    body["shippingAddress"]["line1"] = STREET
    # When the order's INSERT fails inside PostgreSQL
    result = orders_api.post("/orders", body, token=mint(sub="canary", email=EMAIL))
    # Then the client gets the contract's 500 and the log has the error, but no PII
    assert result.status == 500 and result.body["error"]["code"] == "INTERNAL_ERROR"
    captured = captured_log.getvalue()
    assert "orders are closed for this test" in captured  # the error itself was logged
    assert "hide_parameters=True" in captured  # SQLAlchemy's marker in place of the values
    assert EMAIL not in captured
    assert STREET not in captured
    assert EMAIL not in json.dumps(result.body) and STREET not in json.dumps(result.body)


def test_every_function_engine_hides_parameters():
    from common.db import make_engine
    from common.settings import Settings

    engine = make_engine(Settings(DATABASE_URL="postgresql+pg8000://nobody@127.0.0.1:1/none"))
    assert engine.hide_parameters
    proxied = make_engine(
        Settings(DB_HOST="proxy.example", DB_NAME="orderflow", DB_USER="orders", AWS_REGION="us-east-1"),
        rds_client=object(),
    )
    assert proxied.hide_parameters
