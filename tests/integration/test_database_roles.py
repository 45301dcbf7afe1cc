"""One database role per service: its own schema and its own events, nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from orderflow import grants
from orderflow.migrate import SCHEMAS

pytestmark = pytest.mark.db

SERVICES = ("orders", "inventory", "notifications", "shipping")


@pytest.fixture
def as_role(db: str) -> Iterator[Any]:
    engines: list[Any] = []

    def connect(role: str) -> Any:
        engine = create_engine(grants.url_for_role(db, role), hide_parameters=True)
        engines.append(engine)
        return engine

    yield connect
    for engine in engines:
        engine.dispose()


def tables(engine: Any, schema: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> 'alembic_version'"
                ),
                {"s": schema},
            ).scalars()
        )


def refused(engine: Any, sql: str | tuple[str, dict[str, Any]]) -> str:
    statement, params = (sql, {}) if isinstance(sql, str) else sql
    with pytest.raises(DBAPIError) as caught, engine.connect() as conn:
        conn.execute(text(statement), params)
    return str(caught.value.orig)


def select_from(schema: str, table: str) -> str:
    # Identifiers from pg_tables, quoted: nothing here comes from outside the test.
    return f'SELECT 1 FROM "{schema}"."{table}"'  # noqa: S608


def outbox_row(source: str) -> tuple[str, dict[str, Any]]:
    return (
        "INSERT INTO eventing.outbox (event_id, source, detail_type, detail, correlation_id) "
        "VALUES (:event_id, :source, 'OrderCreated', '{}', 'c-1')",
        {"event_id": uuid.uuid4(), "source": source},
    )


@pytest.mark.parametrize("service", SERVICES)
def test_each_role_works_its_own_schema_and_is_refused_every_other(engine, as_role, service):
    mine = as_role(service)
    with mine.begin() as conn:
        for table in tables(engine, service):
            conn.execute(text(select_from(service, table)))
    for other in SCHEMAS:
        if other in (service, "eventing"):
            continue
        for table in tables(engine, other):
            assert "permission denied" in refused(mine, select_from(other, table)), (
                service,
                other,
            )


@pytest.mark.parametrize("service", ["orders", "inventory", "shipping"])
def test_a_publisher_adds_outbox_rows_only_under_its_own_source(engine, as_role, service):
    forger = "shipping.service" if service != "shipping" else "orders.service"
    with engine.begin() as conn:  # another service's row, written by the owner
        statement, params = outbox_row(forger)
        conn.execute(text(statement), params)
    role = as_role(service)
    with role.begin() as conn:
        statement, params = outbox_row(f"{service}.service")
        conn.execute(text(statement), params)
    assert "row-level security" in refused(role, outbox_row(forger))
    # nor can it read or mark another service's rows: it sees only its own
    with role.begin() as conn:
        sources = conn.execute(text("SELECT DISTINCT source FROM eventing.outbox")).scalars().all()
        marked = conn.execute(
            text("UPDATE eventing.outbox SET published_at = now() WHERE source = :s"), {"s": forger}
        )
    assert sources == [f"{service}.service"]
    assert marked.rowcount == 0


def test_notifications_publish_nothing(as_role):
    assert "permission denied" in refused(as_role("notifications"), outbox_row("notifications.service"))


def test_the_relay_sees_every_row_and_no_service_table(engine, as_role):
    with engine.begin() as conn:
        for service in ("orders", "inventory", "shipping"):
            statement, params = outbox_row(f"{service}.service")
            conn.execute(text(statement), params)
    relay = as_role("outbox_relay")
    with relay.begin() as conn:
        rows = conn.execute(text("SELECT id FROM eventing.outbox FOR UPDATE SKIP LOCKED")).scalars().all()
        assert len(rows) == 3
        conn.execute(text("UPDATE eventing.outbox SET published_at = now()"))
        conn.execute(text("DELETE FROM eventing.outbox WHERE published_at IS NOT NULL"))
    assert "permission denied" in refused(relay, outbox_row("orders.service"))
    for service in SERVICES:
        for table in tables(engine, service):
            assert "permission denied" in refused(relay, select_from(service, table))


def test_a_table_added_later_to_a_schema_is_the_services_alone(engine, as_role):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE inventory.added_later (id int)"))
    try:
        with as_role("inventory").begin() as conn:
            conn.execute(text("INSERT INTO inventory.added_later VALUES (1)"))
        assert "permission denied" in refused(as_role("orders"), "SELECT * FROM inventory.added_later")
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE inventory.added_later"))


def test_granting_again_is_harmless(engine):
    with engine.begin() as conn:
        assert grants.apply(conn) == [role.name for role in grants.ROLES]


def test_the_relay_prunes_as_its_own_role(engine, as_role):
    """The relay's scheduled run prunes both tables: its role must be allowed to."""
    from datetime import timedelta

    from common.outbox.admin import prune

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO eventing.processed_events (consumer, event_id, processed_at) "
                "VALUES ('inventory', gen_random_uuid(), now() - interval '40 days')"
            )
        )
    pruned = prune(
        as_role("outbox_relay"),
        outbox_retention=timedelta(days=32),
        processed_retention=timedelta(days=32),
    )
    assert pruned == (0, 1)
