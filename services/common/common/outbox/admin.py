"""The outbox's housekeeping and what operators see: its health (the relay's metrics,
``orderflow outbox``), parked rows and their requeueing, and pruning of published rows
and of the consumers' inbox marks past their retention."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Interval, bindparam, delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from common.inbox import processed_events
from common.outbox.tables import outbox

PRUNE_BATCH = 500
PRUNE_MAX_BATCHES = 20  # per relay run and table: pruning never crowds out publishing


@dataclass(frozen=True)
class OutboxHealth:
    oldest_unpublished_age_s: float  # of rows still to publish (parked rows excluded); 0 when none
    unpublished: int
    parked: int


def _unlimited() -> float:
    return math.inf


def health(conn: Connection) -> OutboxHealth:
    """The age of the oldest row still to publish (parked excluded), and the counts."""
    row = conn.execute(
        select(
            func.coalesce(
                func.extract(
                    "epoch", func.now() - func.min(outbox.c.created_at).filter(outbox.c.parked_at.is_(None))
                ),
                0,
            ),
            func.count().filter(outbox.c.parked_at.is_(None)),
            func.count().filter(outbox.c.parked_at.is_not(None)),
        ).where(outbox.c.published_at.is_(None))
    ).one()
    return OutboxHealth(float(row[0]), int(row[1]), int(row[2]))


def health_by_source(conn: Connection) -> list[dict[str, Any]]:
    """Per service (event source): rows still to publish, parked rows, the oldest age."""
    rows = conn.execute(
        select(
            outbox.c.source,
            func.count().filter(outbox.c.parked_at.is_(None)).label("unpublished"),
            func.count().filter(outbox.c.parked_at.is_not(None)).label("parked"),
            func.extract("epoch", func.now() - func.min(outbox.c.created_at)).label("oldest_age_s"),
        )
        .where(outbox.c.published_at.is_(None))
        .group_by(outbox.c.source)
        .order_by(outbox.c.source)
    ).all()
    return [dict(r._mapping) for r in rows]


def parked_rows(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(outbox.c.id, outbox.c.source, outbox.c.detail_type, outbox.c.parked_at, outbox.c.parked_reason)
        .where(outbox.c.parked_at.is_not(None), outbox.c.published_at.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


def requeue_parked(conn: Connection, ids: Sequence[int] | None = None) -> list[int]:
    """Give parked rows (all, or those ``ids``) back to the relay; returns the ids requeued."""
    stmt = (
        update(outbox)
        .where(outbox.c.parked_at.is_not(None), outbox.c.published_at.is_(None))
        .values(parked_at=None, parked_reason=None, next_attempt_at=func.now(), attempts=0)
        .returning(outbox.c.id)
    )
    if ids is not None:
        stmt = stmt.where(outbox.c.id.in_(list(ids)))
    return sorted(int(i) for i in conn.execute(stmt).scalars())


def prune(
    engine: Engine,
    *,
    outbox_retention: timedelta,
    processed_retention: timedelta,
    batch: int = PRUNE_BATCH,
    max_batches: int = PRUNE_MAX_BATCHES,
    time_left: Callable[[], float] = _unlimited,
) -> tuple[int, int]:
    """Delete published outbox rows and processed-event marks past their retention.

    Small batches, each its own short transaction. Only rows with a ``published_at``
    older than the retention are candidates: an unpublished row has none, so it is
    never deleted. Returns (outbox rows, processed marks) deleted.
    """
    old_published = (
        select(outbox.c.id)
        .where(outbox.c.published_at < func.now() - bindparam("keep", type_=Interval))
        .order_by(outbox.c.published_at)
        .limit(batch)
    )
    old_marks = (
        select(processed_events.c.consumer, processed_events.c.event_id)
        .where(processed_events.c.processed_at < func.now() - bindparam("keep", type_=Interval))
        .order_by(processed_events.c.processed_at)
        .limit(batch)
    )
    statements = [
        (delete(outbox).where(outbox.c.id.in_(old_published.scalar_subquery())), outbox_retention),
        (
            delete(processed_events).where(
                func.row(processed_events.c.consumer, processed_events.c.event_id).in_(old_marks)
            ),
            processed_retention,
        ),
    ]
    counts = []
    for stmt, keep in statements:
        deleted = 0
        for _ in range(max_batches):
            if time_left() <= 1:
                break
            with engine.begin() as conn:
                n = conn.execute(stmt, {"keep": keep}).rowcount
            deleted += n
            if n < batch:
                break
        counts.append(deleted)
    return counts[0], counts[1]
