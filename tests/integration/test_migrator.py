"""The migration function (services/migrator) as CloudFormation's custom resource, for real:
its handler against a real PostgreSQL with CloudFormation's Create, Update and Delete
events, each answer caught at the event's ``ResponseURL`` (a loopback HTTP server standing
in for the pre-signed S3 URL)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from migrator import handler as migrator
from orderflow.lambda_runtime import LambdaContext
from orderflow.migrate import SCHEMAS

pytestmark = pytest.mark.db

SECRET = "hunter2-not-for-logs"  # a password in DATABASE_URL (trust auth ignores it)


class ResponseUrl:
    """Takes CloudFormation's answers: each PUT's path, headers and JSON body."""

    def __init__(self) -> None:
        answers: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answers.append({"path": self.path, "raw": body.decode(), "body": json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.answers = answers
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cfn-response?X-Amz-Signature=abc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def response_url() -> Iterator[ResponseUrl]:
    server = ResponseUrl()
    yield server
    server.close()


@pytest.fixture
def empty_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new database, not migrated, as DATABASE_URL (with a password in it) for the handler."""
    name = f"orderflow_migrator_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name, password=SECRET).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def cfn_event(request_type: str, response_url: str, physical_id: str | None = None) -> dict[str, Any]:
    """What CloudFormation sends a Lambda-backed custom resource."""
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:orderflow-migrations:live",
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/orderflow/0f3e",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Migrations",
        "ResourceType": "Custom::Migrations",
        "ResourceProperties": {"ServiceToken": "arn:...", "MigrationsVersion": "arn:...:7"},
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    if request_type == "Update":
        event["OldResourceProperties"] = {"ServiceToken": "arn:...", "MigrationsVersion": "arn:...:6"}
    return event


def heads(url: str) -> dict[str, str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                schema: conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version')).scalar()  # noqa: S608
                for schema in SCHEMAS
            }
    finally:
        engine.dispose()


def context() -> LambdaContext:
    return LambdaContext(function_name="MigrationFunction", timeout_s=120)


def test_create_update_and_delete_answer_cloudformation(empty_database: str, response_url: ResponseUrl):
    create = cfn_event("Create", response_url.url)
    migrator.handler(create, context())
    [answer] = response_url.answers
    body = answer["body"]
    assert answer["path"] == "/cfn-response?X-Amz-Signature=abc"
    assert body["Status"] == "SUCCESS", body
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        create["StackId"],
        create["RequestId"],
        "Migrations",
    )
    assert body["Data"] == {"Schemas": ",".join(SCHEMAS)}
    migrated = heads(empty_database)
    assert all(migrated.values()), migrated
    physical_id = body["PhysicalResourceId"]
    assert physical_id

    # An Update (a new version of the function: new migrations) migrates again; nothing to do.
    migrator.handler(cfn_event("Update", response_url.url, physical_id), context())
    update = response_url.answers[1]["body"]
    assert update["Status"] == "SUCCESS" and update["PhysicalResourceId"] == physical_id, update
    assert heads(empty_database) == migrated

    # Delete drops nothing: the schemas and their data outlive the resource.
    migrator.handler(cfn_event("Delete", response_url.url, physical_id), context())
    delete = response_url.answers[2]["body"]
    assert delete["Status"] == "SUCCESS" and delete["PhysicalResourceId"] == physical_id
    assert "nothing dropped" in delete["Reason"]
    assert heads(empty_database) == migrated
    assert all(SECRET not in a["raw"] for a in response_url.answers)


def test_a_failing_migration_answers_failed_with_one_line_and_no_secret(
    empty_database: str, response_url: ResponseUrl, monkeypatch: pytest.MonkeyPatch
):
    # Another migrator holds the eventing schema's lock (migrations/env.py); this one's own
    # lock timeout ends its wait, and CloudFormation hears why.
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "300")
    holder = create_engine(empty_database)
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('orderflow:eventing'))"))
        migrator.handler(cfn_event("Create", response_url.url), context())
        conn.execute(text("SELECT pg_advisory_unlock(hashtext('orderflow:eventing'))"))
    holder.dispose()
    [answer] = response_url.answers
    body = answer["body"]
    assert body["Status"] == "FAILED"
    assert "lock timeout" in body["Reason"], body["Reason"]
    assert "\n" not in body["Reason"] and len(body["Reason"]) <= migrator.REASON_LIMIT
    assert SECRET not in answer["raw"]
    assert body["PhysicalResourceId"]  # CloudFormation needs one even for a failed Create


def test_the_session_limits_are_the_functions_own_and_bounded_by_the_time_left():
    from common.settings import Settings

    settings = Settings.from_env(
        {
            "DB_STATEMENT_TIMEOUT_MS": "600000",
            "DB_LOCK_TIMEOUT_MS": "60000",
            "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS": "0",
        }
    )
    # 15 minutes left: the configured limits; "0" (none) becomes the time left less the margin.
    roomy = migrator.session_limits(settings, LambdaContext(timeout_s=900))
    assert roomy["db_statement_timeout_ms"] == 600_000 and roomy["db_lock_timeout_ms"] == 60_000
    assert 870_000 < roomy["db_idle_in_transaction_timeout_ms"] <= 880_000
    # 60 s left, 20 s kept back for the answer: nothing may wait past 40 s.
    tight = migrator.session_limits(settings, LambdaContext(timeout_s=60))
    assert all(39_000 < limit <= 40_000 for limit in tight.values()), tight


def test_a_direct_invocation_returns_the_result(empty_database: str):
    assert migrator.handler({"source": "orderflow migrate"}, context()) == {
        "ok": True,
        "migrated": list(SCHEMAS),
    }


def test_a_direct_invocation_that_fails_returns_the_reason(
    monkeypatch: pytest.MonkeyPatch, empty_database: str
):
    url = make_url(empty_database).set(database="no_such_database").render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    answer = migrator.handler({"source": "orderflow migrate"}, context())
    assert answer["ok"] is False and "no_such_database" in answer["reason"], answer
    assert SECRET not in json.dumps(answer)


@pytest.mark.parametrize(
    "message",
    [
        "connect failed: https://proxy:5432/?Action=connect&DBUser=postgres&X-Amz-Signature=deadbeef01",
        "password authentication failed: password=hunter2-not-for-logs",
        "cannot reach postgresql+pg8000://postgres:hunter2-not-for-logs@host/db",
    ],
)
def test_the_reason_masks_credentials(message: str):
    line = migrator.reason(RuntimeError(message + "\nsecond line"))
    assert "hunter2" not in line and "deadbeef01" not in line and "second line" not in line
    assert line.startswith("RuntimeError: ")
