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


# -- eventing.processed_events: each consumer's own marks ---------------------------------

CONSUMERS = {role.name: role.consumer for role in grants.ROLES if role.consumer}


def test_each_role_names_the_consumer_its_service_marks_as():
    from inventory.usecases import CONSUMER as INVENTORY
    from notifications.usecases import CONSUMER as NOTIFICATIONS
    from orders.usecases import STATUS_CONSUMER
    from shipping.usecases import CONSUMER as SHIPPING

    assert CONSUMERS == {
        "orders": STATUS_CONSUMER,
        "inventory": INVENTORY,
        "notifications": NOTIFICATIONS,
        "shipping": SHIPPING,
    }


def mark(consumer: str, event_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    # As common.outbox marks an event (ON CONFLICT DO NOTHING ... RETURNING).
    return (
        "INSERT INTO eventing.processed_events (consumer, event_id) VALUES (:consumer, :event_id)"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        {"consumer": consumer, "event_id": event_id},
    )


@pytest.fixture
def marks(engine) -> dict[str, uuid.UUID]:
    """One mark per consumer, written by the owner."""
    written = {consumer: uuid.uuid4() for consumer in CONSUMERS.values()}
    with engine.begin() as conn:
        for consumer, event_id in written.items():
            statement, params = mark(consumer, event_id)
            conn.execute(text(statement), params)
    return written


@pytest.mark.parametrize("service", SERVICES)
def test_a_role_marks_and_reads_only_its_own_consumers_events(engine, as_role, marks, service):
    own = CONSUMERS[service]
    role = as_role(service)
    # It marks its own consumer's events (the way the consumers do, RETURNING included)
    fresh = uuid.uuid4()
    with role.begin() as conn:
        statement, params = mark(own, fresh)
        assert conn.execute(text(statement), params).scalar_one() == fresh
        seen = conn.execute(text("SELECT consumer, event_id FROM eventing.processed_events")).all()
    # ... and sees only those
    assert sorted(seen) == sorted([(own, fresh), (own, marks[own])])
    for other in set(CONSUMERS.values()) - {own}:
        # It cannot mark another consumer's event as handled (that consumer would skip it)
        assert "row-level security" in refused(role, mark(other, uuid.uuid4())), other
        # ... nor claim another's mark as its own, nor even see that it exists
        with role.begin() as conn:
            found = conn.execute(
                text("SELECT count(*) FROM eventing.processed_events WHERE event_id = :e"),
                {"e": marks[other]},
            ).scalar_one()
        assert found == 0, other


@pytest.mark.parametrize("service", SERVICES)
def test_a_role_deletes_and_changes_no_mark_not_even_its_own(engine, as_role, marks, service):
    role = as_role(service)
    own = CONSUMERS[service]
    assert "permission denied" in refused(role, "DELETE FROM eventing.processed_events")
    assert "permission denied" in refused(
        role, ("DELETE FROM eventing.processed_events WHERE consumer = :c", {"c": own})
    )
    assert "permission denied" in refused(
        role, ("UPDATE eventing.processed_events SET consumer = :c", {"c": own})
    )
    assert "permission denied" in refused(role, "TRUNCATE eventing.processed_events")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM eventing.processed_events")).scalar_one() == len(marks)


def test_the_relay_reads_and_prunes_every_consumers_marks_and_marks_none(engine, as_role, marks):
    relay = as_role("outbox_relay")
    with relay.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM eventing.processed_events")).scalar_one() == len(marks)
        conn.execute(text("DELETE FROM eventing.processed_events"))
    assert "permission denied" in refused(relay, mark("inventory", uuid.uuid4()))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM eventing.processed_events")).scalar_one() == 0


def test_a_delete_right_granted_by_an_earlier_release_is_taken_back(engine, as_role, marks):
    with engine.begin() as conn:
        conn.execute(text("GRANT DELETE ON eventing.processed_events TO notifications"))
        grants.apply(conn)
    assert "permission denied" in refused(as_role("notifications"), "DELETE FROM eventing.processed_events")
