"""The transactional outbox and the consumers' record of handled events (schema ``eventing``).

A service writes its event row with ``add_event`` on the same connection, in the
same transaction, as the state the event announces. ``relay`` publishes rows that
are still unsent, claiming them with ``FOR UPDATE SKIP LOCKED`` so that any number
of relays (and the API's publish-after-commit) never publish one row twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine

from common.db import retry_on_disconnect
from common.events import DomainEvent
from common.observability import logger
from common.publisher import EventBridgePublisher, OutgoingEvent, PublishError

SCHEMA = "eventing"
BATCH_SIZE = 10
MAX_ATTEMPTS = 20  # a row refused this often stays in the table for an operator

metadata = MetaData(schema=SCHEMA)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("detail_type", Text, nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# Every transaction that announces something runs these: built once, compiled once.
_ADD_EVENT = outbox.insert().returning(outbox.c.id)
_MARK_PROCESSED = (
    insert(processed_events)
    .values(consumer=bindparam("consumer"), event_id=bindparam("event_id"))
    .on_conflict_do_nothing()
    .returning(processed_events.c.event_id)
)


def add_event(conn: Connection, event: DomainEvent) -> int:
    """Store ``event`` for publishing; returns its outbox id. Call inside the state's transaction."""
    row = conn.execute(
        _ADD_EVENT,
        {
            "event_id": event.metadata.event_id,
            "source": event.SOURCE,
            "detail_type": event.DETAIL_TYPE,
            "detail": event.model_dump(mode="json", by_alias=True),
            "correlation_id": event.metadata.correlation_id,
        },
    )
    return int(row.scalar_one())


def mark_processed(conn: Connection, consumer: str, event_id: uuid.UUID) -> bool:
    """Record that ``consumer`` handled ``event_id``; False if it already had.

    Call first in the transaction that applies the event's effect: a concurrent
    duplicate blocks on the primary key until this transaction ends, then sees it.
    """
    result = conn.execute(_MARK_PROCESSED, {"consumer": consumer, "event_id": event_id})
    return result.first() is not None


@dataclass
class RelayResult:
    published: int = 0
    failed: int = 0


def relay(
    engine: Engine,
    publisher: EventBridgePublisher,
    *,
    ids: Sequence[int] | None = None,
    batch_size: int = BATCH_SIZE,
    should_continue: Callable[[], bool] = lambda: True,
) -> RelayResult:
    """Publish unsent outbox rows, oldest first, ``batch_size`` per transaction.

    With ``ids``, only those rows (the API publishing what it just committed).
    Stops when nothing is left, when a batch had a failure (the rows stay unsent
    for the next run), or when ``should_continue`` says so (Lambda time left).
    """
    total = RelayResult()
    while should_continue():
        batch = retry_on_disconnect(lambda: _relay_batch(engine, publisher, ids, batch_size), engine=engine)
        total.published += batch.published
        total.failed += batch.failed
        if batch.failed or batch.published < batch_size or ids is not None:
            break
    return total


def _relay_batch(
    engine: Engine, publisher: EventBridgePublisher, ids: Sequence[int] | None, batch_size: int
) -> RelayResult:
    with engine.begin() as conn:
        query = (
            select(
                outbox.c.id, outbox.c.source, outbox.c.detail_type, outbox.c.detail, outbox.c.correlation_id
            )
            .where(outbox.c.published_at.is_(None), outbox.c.attempts < MAX_ATTEMPTS)
            .order_by(outbox.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(outbox.c.id.in_(list(ids)))
        rows = conn.execute(query).all()
        if not rows:
            return RelayResult()
        events = [
            OutgoingEvent(
                key=r.id,
                source=r.source,
                detail_type=r.detail_type,
                detail=json.dumps(r.detail, separators=(",", ":")),
                correlation_id=r.correlation_id,
            )
            for r in rows
        ]
        try:
            publisher.publish(events)
            published, failed = events, []
        except PublishError as exc:
            published, failed = exc.published, exc.failed
        if published:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([e.key for e in published]))
                .values(published_at=func.now())
            )
        for failure in failed:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == failure.event.key)
                .values(
                    attempts=outbox.c.attempts + 1,
                    last_error=f"{failure.error_code}: {failure.error_message}"[:1000],
                )
            )
            logger.warning(
                "event not published; it stays in the outbox",
                extra={
                    "outbox_id": failure.event.key,
                    "error_code": failure.error_code,
                    "correlation_id": failure.event.correlation_id,
                },
            )
        return RelayResult(published=len(published), failed=len(failed))


def publish_committed(engine: Engine, publisher: EventBridgePublisher, ids: Sequence[int]) -> None:
    """Publish rows a function has just committed, without waiting for the relay.

    Never raises: on any failure the rows stay unsent and the scheduled relay
    publishes them, so the caller's work (an HTTP 201, a consumed event) stands.
    """
    if not ids:
        return
    try:
        relay(engine, publisher, ids=ids)
    except Exception:
        logger.exception("publishing after commit failed; the outbox relay will retry")
