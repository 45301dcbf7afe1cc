"""The database: one SQLAlchemy engine on pg8000 per container, built lazily.

* ``DATABASE_URL`` set: used as is (local suite, tests).
* Otherwise RDS Proxy: ``DB_HOST``/``DB_PORT``/``DB_NAME``/``DB_USER`` with a fresh IAM
  auth token for every new connection (tokens live 15 minutes, so one is minted in
  the connect hook, never baked into the URL) and TLS required.

Every connection starts with ``statement_timeout``, ``lock_timeout`` and
``idle_in_transaction_session_timeout`` (settings) as startup parameters, not
``SET`` statements, which would pin an RDS Proxy session; template.yaml's proxy
``InitQuery`` sets the same defaults on the proxy's own connections.

The pool holds one connection and no overflow: a Lambda container serves one
request at a time, and RDS Proxy does the pooling across containers.

A connection is pinged before use only when it has been idle for ``PING_AFTER_IDLE_S``
(``ping_when_idle``), not on every checkout as ``pool_pre_ping`` would: an invocation
runs two or three short transactions milliseconds apart, and a ping before each one
was a round trip more per transaction. A connection lost within that second fails its
statement, and ``retry_on_disconnect`` runs the transaction again on a new one.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError

from common.observability import logger
from common.settings import Settings

T = TypeVar("T")

# SQLSTATEs that mean "this connection is gone", not "this statement is wrong".
CONNECTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"})
POOL_RECYCLE_SECONDS = 600  # under the 15 minutes an IAM token is valid for
PING_AFTER_IDLE_S = 1.0


def make_engine(settings: Settings, *, rds_client: Any = None) -> Engine:
    """Build the container's engine from settings; opens no connection."""
    options: dict[str, Any] = {
        "pool_size": 1,
        "max_overflow": 0,
        "pool_pre_ping": False,  # ping_when_idle instead
        "pool_recycle": POOL_RECYCLE_SECONDS,
        "pool_timeout": 10,
        # Errors and logs never carry bound parameters: they hold emails and addresses.
        "hide_parameters": True,
    }
    connect_args: dict[str, Any] = {"startup_params": {"options": session_options(settings)}}
    if settings.database_url:
        return without_row_data(
            ping_when_idle(create_engine(settings.database_url, connect_args=connect_args, **options))
        )

    settings.require("db_host", "db_name", "db_user")
    url = URL.create(
        "postgresql+pg8000",
        username=settings.db_user,
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
    )
    connect_args["ssl_context"] = ssl.create_default_context()
    engine = create_engine(url, connect_args=connect_args, **options)

    @event.listens_for(engine, "do_connect")
    def _iam_auth_token(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        # The client is looked up per connection, not captured here: common.aws.renew
        # (after a SnapStart restore) must reach connections of an engine built before.
        client = rds_client
        if client is None:
            from common import aws  # botocore, not boto3; only the RDS Proxy path pays for it

            client = aws.rds_client(settings.aws_region)
        cparams["password"] = client.generate_db_auth_token(
            DBHostname=settings.db_host, Port=settings.db_port, DBUsername=settings.db_user
        )

    return without_row_data(ping_when_idle(engine))


# The server's error fields that can quote a row or a value (pg8000 keeps each field
# under its protocol letter): DETAIL ("Failing row contains (...)", "Key (email)=(...)"),
# WHERE (the context, which may quote a statement's values).
ROW_DATA_FIELDS = ("D", "W")


def without_row_data(engine: Engine) -> Engine:
    """Every database error of ``engine`` reduced to what names no customer's data: the
    SQLSTATE, the message and the constraint, table and column names, never the DETAIL
    or WHERE fields; a data exception's (class 22) message stops before the value it
    quotes (``invalid input syntax for type uuid: "..."``).

    Done once, as SQLAlchemy wraps the driver's error, so that nothing downstream (our
    logs, Lambda's own report of an error a handler raised) can carry the row.
    """

    @event.listens_for(engine, "handle_error")
    def _reduce(context: Any) -> None:
        driver_error = context.original_exception
        fields = driver_error.args[0] if driver_error.args else None
        if not isinstance(fields, dict):
            return
        before = dict(fields)
        # In place: the driver raised this error from another that holds the same dict
        # (pg8000's DB-API layer re-raises its protocol error), and both are in the chain.
        for name in ROW_DATA_FIELDS:
            fields.pop(name, None)
        if str(fields.get("C", "")).startswith("22") and isinstance(fields.get("M"), str):
            fields["M"] = fields["M"].split(":", 1)[0]
        if fields == before:
            return
        wrapped = context.sqlalchemy_exception
        if wrapped is not None and wrapped.args:
            # SQLAlchemy's message quotes the driver's error as it was when wrapped.
            wrapped.args = (
                f"({type(driver_error).__module__}.{type(driver_error).__name__}) {driver_error}",
                *wrapped.args[1:],
            )

    return engine


def ping_when_idle(engine: Engine, idle_s: float = PING_AFTER_IDLE_S) -> Engine:
    """Ping a pooled connection on checkout when it has been idle ``idle_s`` or more.

    A failed ping raises ``DisconnectionError``, on which the pool replaces the
    connection and checks out again, as it does for ``pool_pre_ping``.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle_from_now(dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise DisconnectionError("the pooled connection is gone") from err
            raise

    return engine


def session_options(settings: Settings) -> str:
    """The libpq ``options`` startup parameter carrying the connection's time limits."""
    return " ".join(
        [
            f"-c statement_timeout={settings.db_statement_timeout_ms}",
            f"-c lock_timeout={settings.db_lock_timeout_ms}",
            f"-c idle_in_transaction_session_timeout={settings.db_idle_in_transaction_timeout_ms}",
        ]
    )


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the connection was lost or refused (worth a retry)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    import pg8000.dbapi

    if isinstance(exc, pg8000.dbapi.InterfaceError | ConnectionError | OSError):
        return True
    if isinstance(exc, pg8000.dbapi.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C") in CONNECTION_SQLSTATES
    return False


def retry_on_disconnect(
    operation: Callable[[], T],
    *,
    engine: Engine,
    attempts: int = 3,
    base_delay: float = 0.05,
    time_left: Callable[[], float] | None = None,
    max_delay: float = 1.0,
) -> T:
    """Run ``operation`` (a whole transaction), retrying it on connection loss.

    On a connection-class failure the pool is emptied, so the next attempt opens a
    fresh connection (with a fresh IAM token), after a jittered exponential backoff
    (at most ``max_delay``). Any other error is raised at once. ``operation`` must be
    a complete transaction that is safe to run again, since a failed attempt was
    rolled back.

    ``attempts`` bounds the tries; with ``time_left`` (seconds the caller may still
    spend, its own margin for a last attempt taken off) they go on instead for as
    long as the next wait fits in it (for a step that must not be given up lightly,
    such as recording that SES accepted an email).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            delay = min(max_delay, base_delay * 2 ** min(attempt - 1, 20) * (1 + random.random()))
            if time_left is None:
                if attempt >= attempts:
                    raise
            elif time_left() < delay:
                raise
            engine.dispose()
            logger.warning(
                "database connection lost; retrying",
                extra={"attempt": attempt, "delay_s": round(delay, 3), "error": type(exc).__name__},
            )
            time.sleep(delay)
