"""Publishing right after the commit without a claim transaction: the writer leases its
rows to itself in the INSERT and sends them from memory. Real PostgreSQL and moto.

What each test proves: a relay never takes a row its writer still holds; the fast path
is one transaction (the mark); a writer that dies leaves its rows to the relay once
the lease ends, published once; a transaction that rolled back publishes nothing; a
fast path with no time gives its rows straight back to the relay.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from common.outbox.relay import publish_committed, relay
from common.outbox.writer import FAST_PATH_LEASE, add_event, forget
from common.publisher import EventBridgePublisher
from common.uow import SqlUnitOfWork
from tests.integration.test_outbox_failures import order_created_event, scalar
from tests.support import network

pytestmark = [pytest.mark.db, pytest.mark.aws]


@pytest.fixture
def engine(db: str) -> Any:
    engine = create_engine(db, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def delivered(aws: Any) -> Counter[str]:
    return Counter(e["detail"]["metadata"]["eventId"] for e in aws.drain("order-created"))


def write_leased(engine: Any, n: int = 0) -> tuple[int, Any]:
    event_ = order_created_event(n)
    with engine.begin() as conn:
        return add_event(conn, event_, lease=True), event_


def test_a_leased_row_is_left_alone_by_relays_and_the_fast_path_sends_it_in_one_transaction(engine, db, aws):
    # Given a row its writer has just committed, leased to itself
    outbox_id, written = write_leased(engine)
    publisher = EventBridgePublisher(aws.events, aws.name)
    lease_sql = "SELECT extract(epoch FROM claimed_until - now()) FROM eventing.outbox WHERE id = :id"
    left = scalar(db, lease_sql, id=outbox_id)
    assert FAST_PATH_LEASE.total_seconds() - 5 < float(left) <= FAST_PATH_LEASE.total_seconds()

    # When a relay runs meanwhile, Then it takes nothing
    assert relay(create_engine(db), publisher).published == 0

    # When the writer publishes after its commit
    transactions, statements = [], []
    event.listen(engine, "begin", lambda conn: transactions.append(1))
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    result = publish_committed(engine, publisher, [outbox_id], budget_s=1.8)

    # Then the event is on the bus once, marked, in one transaction of one statement (no claim)
    assert result is not None and result.published == 1
    assert delivered(aws) == Counter({str(written.metadata.event_id): 1})
    assert len(transactions) == 1 and len(statements) == 1 and statements[0].startswith("UPDATE")
    assert scalar(
        db,
        "SELECT published_at IS NOT NULL AND claimed_until IS NULL FROM eventing.outbox WHERE id = :id",
        id=outbox_id,
    )
    # And the detail stored is the detail sent
    stored = scalar(db, "SELECT detail FROM eventing.outbox WHERE id = :id", id=outbox_id)
    assert stored == written.model_dump(mode="json", by_alias=True)


def test_a_writer_that_dies_after_its_commit_leaves_the_row_to_the_relay_once_the_lease_ends(engine, db, aws):
    # Given a committed, leased row whose writer died before publishing it (its memory gone)
    outbox_id, written = write_leased(engine)
    forget([outbox_id])
    publisher = EventBridgePublisher(aws.events, aws.name)

    # While the lease lasts no relay publishes it
    assert relay(engine, publisher).published == 0
    # When the lease has ended
    with engine.begin() as conn:
        conn.execute(text("UPDATE eventing.outbox SET claimed_until = now() - interval '1 second'"))

    # Then the next relay run publishes it, once
    assert relay(engine, publisher).published == 1
    assert relay(engine, publisher).published == 0
    assert delivered(aws) == Counter({str(written.metadata.event_id): 1})


def test_a_transaction_that_rolled_back_publishes_nothing(engine, db, aws):
    # Given a unit of work that wrote an event and then did not commit
    with SqlUnitOfWork(engine) as uow:
        outbox_id = uow.outbox.add(order_created_event(1))
    assert scalar(db, "SELECT count(*) FROM eventing.outbox") == 0

    # When the fast path is asked for that id anyway
    result = publish_committed(engine, EventBridgePublisher(aws.events, aws.name), [outbox_id], budget_s=1.8)

    # Then nothing reaches the bus: the memory of the row went with its transaction
    assert result is not None and result.published == 0
    assert delivered(aws) == Counter()


def test_a_fast_path_with_no_time_left_gives_its_rows_back_to_the_relay_at_once(engine, db, aws):
    # Given a leased row, and an invocation with less time left than one PutEvents call
    outbox_id, written = write_leased(engine)
    publisher = EventBridgePublisher(aws.events, aws.name)

    # When the fast path gives up
    assert publish_committed(engine, publisher, [outbox_id], budget_s=0.1) is None

    # Then the lease is released, and the relay's next run publishes the row once
    assert scalar(db, "SELECT claimed_until IS NULL FROM eventing.outbox WHERE id = :id", id=outbox_id)
    assert relay(engine, publisher).published == 1
    assert delivered(aws) == Counter({str(written.metadata.event_id): 1})


def test_an_entry_from_another_engine_is_never_sent_for_a_row_of_this_one(engine, db, aws):
    # Given a leased entry written through another engine, then the table reset (ids restart)
    other = create_engine(db, pool_size=1, max_overflow=0)
    try:
        stale_id, _ = write_leased(other, 1)
    finally:
        other.dispose()
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE eventing.outbox RESTART IDENTITY"))
        fresh = order_created_event(2)
        fresh_id = add_event(conn, fresh)  # a row of this engine's, with the same id
    assert fresh_id == stale_id

    # When this engine's fast path publishes that id
    result = publish_committed(engine, EventBridgePublisher(aws.events, aws.name), [fresh_id], budget_s=1.8)

    # Then it claims the row as a relay would, and sends the row's own event, not the other
    assert result is not None and result.published == 1
    assert delivered(aws) == Counter({str(fresh.metadata.event_id): 1})


def test_a_fast_path_whose_mark_fails_never_raises_and_the_relay_publishes_the_row_after_its_lease(
    engine, db, aws
):
    """PutEvents succeeded, then the database refused every attempt of the mark: the
    caller's work stands (nothing raised), the row keeps its lease, and once the lease
    has ended the relay publishes it again (at least once; consumers are idempotent)."""
    with network.database_link(db) as link:
        writer_engine = create_engine(link.url(db), pool_size=1, max_overflow=0)
        outbox_id, written = write_leased(writer_engine)

        class CutAfterPut:
            def put_events(self, Entries: list[dict[str, Any]]) -> Any:
                answer = aws.events.put_events(Entries=Entries)
                link.cut_for(5.0)  # longer than the mark's three attempts take
                return answer

        # When the writer publishes after its commit and its mark meets the outage
        publisher = EventBridgePublisher(CutAfterPut(), aws.name)
        assert publish_committed(writer_engine, publisher, [outbox_id], budget_s=1.8) is None
        assert link.cut_connections >= 2
        writer_engine.dispose()

    # Then the event went out, the row is still unpublished and leased (no relay takes it)
    assert delivered(aws) == Counter({str(written.metadata.event_id): 1})
    assert scalar(
        db,
        "SELECT published_at IS NULL AND claimed_until > now() FROM eventing.outbox WHERE id = :id",
        id=outbox_id,
    )
    assert relay(engine, EventBridgePublisher(aws.events, aws.name)).published == 0
    # And once the lease has ended, the relay publishes it once more, then never again
    with engine.begin() as conn:
        conn.execute(text("UPDATE eventing.outbox SET claimed_until = now() - interval '1 second'"))
    assert relay(engine, EventBridgePublisher(aws.events, aws.name)).published == 1
    assert relay(engine, EventBridgePublisher(aws.events, aws.name)).published == 0
    assert delivered(aws) == Counter({str(written.metadata.event_id): 1})
