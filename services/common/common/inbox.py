"""The consumers' inbox: which events each consumer has handled (schema ``eventing``).

Delivery is at least once and in any order: a use case calls ``mark_processed`` first
in the transaction that applies an event's effect, keyed on ``metadata.eventId``, so
a delivery that comes again changes nothing. ``common.outbox.admin.prune`` deletes
marks past their retention.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, bindparam, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

metadata = MetaData(schema="eventing")

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


_MARK_PROCESSED = (
    insert(processed_events)
    .values(consumer=bindparam("consumer"), event_id=bindparam("event_id"))
    .on_conflict_do_nothing()
    .returning(processed_events.c.event_id)
)
# With the parameter names it is executed with: common.snapstart compiles it.
PRIMED_STATEMENTS = ((_MARK_PROCESSED, ("consumer", "event_id")),)


def mark_processed(conn: Connection, consumer: str, event_id: uuid.UUID) -> bool:
    """Record that ``consumer`` handled ``event_id``; False if it already had.

    Call first in the transaction that applies the event's effect: a concurrent
    duplicate blocks on the primary key until this transaction ends, then sees it.
    """
    result = conn.execute(_MARK_PROCESSED, {"consumer": consumer, "event_id": event_id})
    return result.first() is not None
