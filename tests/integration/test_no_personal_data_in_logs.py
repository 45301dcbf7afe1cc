"""A database error with a customer's email and address in its bound parameters, or in
the row PostgreSQL quotes back (``DETAIL: Failing row contains (...)``), reaches the log
without them (``hide_parameters`` and ``common.db.without_row_data`` on every engine); an
SES refusal that names the address is logged as its code."""

from __future__ import annotations

import copy
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

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


@pytest.fixture
def canaries_refused(engine: Any) -> Any:
    """A CHECK constraint refuses the canary's order: PostgreSQL's DETAIL quotes the whole row."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "ALTER TABLE orders.orders ADD CONSTRAINT no_canaries "
                "CHECK (customer_email NOT LIKE 'leak-canary%')"
            )
        )
    yield
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE orders.orders DROP CONSTRAINT no_canaries"))


def test_a_constraint_violation_that_quotes_the_row_logs_its_code_not_the_row(
    orders_api, catalog, mint, canaries_refused, captured_log, engine
):
    body = copy.deepcopy(ORDER)
    body["shippingAddress"]["line1"] = STREET
    result = orders_api.post("/orders", body, token=mint(sub="canary", email=EMAIL))
    assert result.status == 500 and result.body["error"]["code"] == "INTERNAL_ERROR"
    captured = captured_log.getvalue()
    # The error is there, by its SQLSTATE and constraint ...
    assert "23514" in captured and "no_canaries" in captured
    # ... and the row PostgreSQL quoted is not
    assert "Failing row contains" not in captured
    assert EMAIL not in captured
    assert STREET not in captured


@pytest.mark.parametrize("reduced", [True, False], ids=["function-engine", "plain-engine"])
def test_only_an_engine_without_the_reduction_quotes_the_failing_row(db, reduced):
    """The other side of the test above: PostgreSQL does quote the row, and only the
    functions' engines (common.db.make_engine) leave it out."""
    from sqlalchemy import create_engine

    from common.db import make_engine
    from common.settings import Settings

    engine = make_engine(Settings(DATABASE_URL=db)) if reduced else create_engine(db, hide_parameters=True)
    try:
        with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
            conn.execute(text("CREATE TEMP TABLE canaries (email text CHECK (email NOT LIKE 'leak-%'))"))
            conn.execute(text("INSERT INTO canaries VALUES (:email)"), {"email": EMAIL})
    finally:
        engine.dispose()
    assert "23514" in str(caught.value) and "canaries_email_check" in str(caught.value)
    assert (EMAIL in str(caught.value)) is (not reduced)
    assert ("Failing row contains" in str(caught.value)) is (not reduced)


def test_a_data_exception_keeps_its_message_but_not_the_value_it_quotes(db):
    from common.db import make_engine
    from common.settings import Settings

    reduced = make_engine(Settings(DATABASE_URL=db))
    try:
        with pytest.raises(DBAPIError) as caught, reduced.connect() as conn:
            conn.execute(text("SELECT CAST(:v AS uuid)"), {"v": EMAIL})
    finally:
        reduced.dispose()
    assert "invalid input syntax for type uuid" in str(caught.value)
    assert EMAIL not in str(caught.value)
    assert "22P02" in str(caught.value)


@pytest.fixture
def ses_refusing() -> Iterator[str]:
    """An SES v2 endpoint that refuses every send with a message naming the recipient."""

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps(
                {
                    "message": "Email address is not verified. The following identities failed "
                    "the check in region US-EAST-1: ada@example.com"
                }
            ).encode()
            self.send_response(400)
            self.send_header("x-amzn-ErrorType", "MessageRejected")
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_ses_refusal_naming_the_address_is_logged_as_its_code(settings, aws, ses_refusing, captured_log):
    import botocore.session

    from common import bootstrap
    from notifications.domain.model import EmailNotSent
    from tests.integration.test_notifications import deliver, order_created
    from tests.support.events import eventbridge_event

    client = botocore.session.get_session().create_client(
        "sesv2",
        region_name="us-east-1",
        endpoint_url=ses_refusing,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bootstrap.override(settings=settings, events_client=aws.events, ses_client=client)
    try:
        with pytest.raises(EmailNotSent) as refused:
            deliver(eventbridge_event(order_created()))
    finally:
        bootstrap.override()
    # What Lambda logs of the raised error, and what the function logged itself
    assert str(refused.value) == "the email was not sent: MessageRejected (HTTP 400)"
    assert refused.value.__suppress_context__
    captured = captured_log.getvalue()
    assert "MessageRejected" in captured
    assert "ada@example.com" not in captured
    assert "failed the check" not in captured
