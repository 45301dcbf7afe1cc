"""The migration function: every service's Alembic migrations, run inside AWS.

Invoked two ways:

* by CloudFormation, as the custom resource ``Migrations`` (template.yaml), on every
  deploy that changes the migrations (they are this function's code, so a new version of
  it is a new property value: an Update); Create and Update migrate, Delete answers
  SUCCESS and drops nothing. The answer goes to the event's ``ResponseURL``; its
  ``Reason`` is one line, and never carries a credential.
* by ``orderflow migrate --stack NAME`` (any other event): the answer is the result,
  ``{"ok": true, "migrated": [...]}`` or ``{"ok": false, "reason": "..."}``.

It connects through the RDS Proxy as the cluster's master user (``DB_USER``), with an IAM
token: the proxy logs in with the password RDS manages in Secrets Manager, which this
function never reads. Its session limits are its own (``DB_STATEMENT_TIMEOUT_MS`` and
``DB_LOCK_TIMEOUT_MS``, minutes rather than the services' seconds), and bounded by the
time the invocation has left, so that CloudFormation always gets an answer: a Lambda
timeout would leave the stack waiting an hour for one.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

# Beside this package in the function's code (services/migrator/Makefile puts them
# there); in a checkout (the tests, orderflow local), the repository's.
_BESIDE = Path(__file__).resolve().parents[1] / "migrations"
# Kept back from the invocation's time: the answer to CloudFormation, after the cut.
MARGIN_MS = 20_000
RESPONSE_TIMEOUT_S = 10.0
REASON_LIMIT = 300

logger = Logger(service="migrations")

# Anything credential-like a driver or botocore message could carry: an IAM auth token
# (a pre-signed query string), a password=... pair, a URL's user:password@.
_SECRETS = [
    (re.compile(r"(X-Amz-[A-Za-z-]+=)[^&\s'\"]+"), r"\1***"),
    (re.compile(r"(?i)(password|pwd|token|secret)(['\"]?\s*[=:]\s*)['\"]?[^\s,'\"}]+"), r"\1\2***"),
    (re.compile(r"//[^/@\s:]+:[^/@\s]+@"), "//***@"),
]


def _server_message(exc: BaseException) -> str | None:
    """PostgreSQL's own words (SQLSTATE and message) from anywhere in the chain: pg8000
    can raise its own "network error" while closing after the server refused the login."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        first = current.args[0] if current.args else None
        if isinstance(first, dict) and "M" in first:
            return f"{first.get('C', '')} {first['M']}".strip()
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return None


def reason(exc: BaseException) -> str:
    """One line for a person: the error's kind and first line, credentials masked."""
    text = _server_message(exc) or (str(exc).strip().splitlines() or [""])[0]
    for pattern, masked in _SECRETS:
        text = pattern.sub(masked, text)
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line[:REASON_LIMIT]


def session_limits(settings: Any, context: Any) -> dict[str, int]:
    """The configured limits (0: none), each cut to the time left less the margin."""
    budget = max(1_000, context.get_remaining_time_in_millis() - MARGIN_MS)
    names = ("db_statement_timeout_ms", "db_lock_timeout_ms", "db_idle_in_transaction_timeout_ms")
    return {name: min(getattr(settings, name) or budget, budget) for name in names}


def run_migrations(context: Any) -> list[str]:
    """Every schema to its head, as DB_USER through the proxy (or DATABASE_URL locally)."""
    from common.db import make_engine
    from common.settings import Settings
    from orderflow.migrate import migrate

    settings = Settings.from_env()
    engine = make_engine(settings.model_copy(update=session_limits(settings, context)))
    try:
        if _BESIDE.is_dir():
            return migrate(engine, directory=_BESIDE)
        return migrate(engine)
    finally:
        engine.dispose()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "RequestType" in event and "ResponseURL" in event:
        return _custom_resource(event, context)
    try:
        migrated = run_migrations(context)
    except Exception as exc:  # the caller (orderflow migrate --stack) prints the reason
        logger.exception("migrations failed")
        return {"ok": False, "reason": reason(exc)}
    logger.info("migrated", extra={"schemas": migrated})
    return {"ok": True, "migrated": migrated}


def _custom_resource(event: dict[str, Any], context: Any) -> dict[str, Any]:
    answered = threading.Lock()
    physical_id = event.get("PhysicalResourceId") or f"{event['LogicalResourceId']}-{event['RequestId']}"

    def answer(status: str, why: str, data: dict[str, str] | None = None) -> None:
        if not answered.acquire(blocking=False):
            return  # the watchdog (or the work) answered first: CloudFormation takes one answer
        body = {
            "Status": status,
            "Reason": why or status,
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": data or {},
        }
        _put(event["ResponseURL"], body)
        logger.info("answered CloudFormation", extra={"status": status, "reason": why})

    # Should a migration outlast the invocation (the time limits end each statement, not
    # their sum), CloudFormation still hears FAILED before Lambda ends this process.
    watchdog = threading.Timer(
        max(0.0, (context.get_remaining_time_in_millis() - MARGIN_MS / 2) / 1000),
        answer,
        args=("FAILED", "the migrations did not finish within the function's timeout"),
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        if event["RequestType"] == "Delete":
            answer("SUCCESS", "nothing dropped: the database and its schemas outlive this resource")
            return {"status": "SUCCESS"}
        try:
            migrated = run_migrations(context)
        except Exception as exc:
            logger.exception("migrations failed")
            why = reason(exc)
            answer("FAILED", why)
            return {"status": "FAILED", "reason": why}
        answer("SUCCESS", f"migrated {', '.join(migrated)}", {"Schemas": ",".join(migrated)})
        return {"status": "SUCCESS"}
    finally:
        watchdog.cancel()


def _put(url: str, body: dict[str, Any], attempts: int = 3) -> None:
    """PUT the answer to the pre-signed S3 URL (no Content-Type: the signature has none).

    A refused or lost PUT is retried (S3 answers 5xx now and then); an answer that never
    arrives would hold the stack for an hour.
    """
    data = json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(  # noqa: S310 - CloudFormation's https ResponseURL
            url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
        )
        try:
            with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_S) as response:  # noqa: S310
                response.read()
            return
        except OSError:  # URLError and HTTPError included
            if attempt == attempts:
                raise
            time.sleep(attempt)
