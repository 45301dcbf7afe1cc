"""The transactional outbox and the consumers' record of handled events (schema ``eventing``).

A service writes its event row with ``add_event`` on the same connection, in the
same transaction, as the state the event announces. ``relay`` publishes rows that
are still unsent, in three steps, so that no transaction is open across PutEvents:

1. claim: one short transaction sets ``claimed_until`` (a lease) on due rows,
   picked with ``FOR UPDATE SKIP LOCKED``, so any number of relays (and the fast
   path right after a commit) never hold one row at the same time;
2. PutEvents, with no transaction open, bounded by the invocation's time left;
3. mark: a second short transaction records each row's outcome.

A crash (or timeout) between 2 and 3 leaves the row unmarked: once its lease ends
it is published again. Delivery is at least once; every consumer is idempotent on
``metadata.eventId``.

What happens to a row that was not published:

* the call failed as a whole (network, timeout, throttling, 5xx): the row is
  released at once with no backoff (the fault is EventBridge's, not the row's) and
  the run stops; the next run (a minute later) tries again, oldest first, so an
  outage delays no row beyond the outage itself;
* EventBridge refused the entry with a transient code (``ThrottlingException``,
  ``InternalFailure``, anything unknown): the row backs off (``next_attempt_at``,
  exponential, capped at ``BACKOFF_CAP``, jittered) and the run goes on;
* refused for a permanent reason (too large, malformed, access denied): the row is
  *parked* with its reason. It is never retried until an operator requeues it
  (``orderflow outbox requeue``, or ``requeue_parked`` below, or in SQL:
  ``UPDATE eventing.outbox SET parked_at = NULL, parked_reason = NULL,
  next_attempt_at = now() WHERE id = ...``).
"""

from __future__ import annotations

import functools
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    Interval,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine

from common.db import retry_on_disconnect
from common.events import DomainEvent
from common.observability import logger
from common.publisher import EventBridgePublisher, FailedEvent, OutgoingEvent, PutResult

SCHEMA = "eventing"
CLAIM_SIZE = 100  # rows per claim: ten PutEvents calls (four at a time) between two short transactions
BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_CAP = timedelta(seconds=60)  # the relay's schedule: a refused row waits at most a run
LEASE_MARGIN = timedelta(seconds=30)  # a lease outlives its holder's PutEvents by this much
PRUNE_BATCH = 500
PRUNE_MAX_BATCHES = 20  # per relay run and table: pruning never crowds out publishing

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
    Column("claimed_until", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("parked_at", DateTime(timezone=True)),
    Column("parked_reason", Text),
    Column("trace_header", Text),
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
# Each with the parameter names it is executed with (they are part of SQLAlchemy's cache
# key): common.snapstart compiles them before a SnapStart snapshot.
PRIMED_STATEMENTS = (
    (_ADD_EVENT, ("event_id", "source", "detail_type", "detail", "correlation_id", "trace_header")),
    (_MARK_PROCESSED, ("consumer", "event_id")),
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
            # Lambda's runtime sets this per invocation (sampled or not): keeping it lets
            # the relay's later PutEvents continue the writer's trace. A dict lookup.
            "trace_header": os.environ.get("_X_AMZN_TRACE_ID") or None,
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
    failed: int = 0  # not published this time, will be retried
    parked: int = 0  # refused for good: waits for an operator
    parked_reasons: list[str] = field(default_factory=list)

    def add(self, other: RelayResult) -> None:
        self.published += other.published
        self.failed += other.failed
        self.parked += other.parked
        self.parked_reasons += other.parked_reasons


@dataclass(frozen=True)
class OutboxHealth:
    oldest_unpublished_age_s: float  # of rows still to publish (parked rows excluded); 0 when none
    unpublished: int
    parked: int


def _unlimited() -> float:
    return math.inf


_DUE = [
    outbox.c.published_at.is_(None),
    outbox.c.parked_at.is_(None),
    outbox.c.next_attempt_at <= func.now(),
    or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < func.now()),
]


def relay(
    engine: Engine,
    publisher: EventBridgePublisher,
    *,
    ids: Sequence[int] | None = None,
    claim_size: int = CLAIM_SIZE,
    time_left: Callable[[], float] = _unlimited,
) -> RelayResult:
    """Publish due outbox rows, oldest first, until none is due or time runs short.

    ``time_left()`` is the seconds this invocation may still spend (its remaining
    time minus a safety margin): no PutEvents call starts unless it can end within
    it. With ``ids``, only those rows, in one claim (the fast path after a commit).
    A run stops early only when a call failed as a whole (EventBridge unreachable or
    throttling us); entries refused one by one do not stop it.
    """
    total = RelayResult()
    while time_left() >= publisher.call_bound_s:
        lease = timedelta(seconds=min(time_left(), 900)) + LEASE_MARGIN
        rows = retry_on_disconnect(functools.partial(_claim, engine, ids, claim_size, lease), engine=engine)
        if not rows:
            break
        put = publisher.put([_outgoing(r) for r in rows], time_left=time_left)
        batch = retry_on_disconnect(functools.partial(_mark, engine, put), engine=engine)
        total.add(batch)
        if put.call_failed or put.unsent or ids is not None or len(rows) < claim_size:
            break
    return total


def _outgoing(row: Any) -> OutgoingEvent:
    return OutgoingEvent(
        key=row.id,
        source=row.source,
        detail_type=row.detail_type,
        detail=row.detail,
        correlation_id=row.correlation_id,
        trace_header=row.trace_header,
    )


def _claim(engine: Engine, ids: Sequence[int] | None, limit: int, lease: timedelta) -> list[Any]:
    due = (
        select(outbox.c.id).where(*_DUE).order_by(outbox.c.id).limit(limit).with_for_update(skip_locked=True)
    )
    if ids is not None:
        due = due.where(outbox.c.id.in_(list(ids)))
    claim = (
        update(outbox)
        .where(outbox.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=func.now() + bindparam("lease", type_=Interval))
        .returning(
            outbox.c.id,
            outbox.c.source,
            outbox.c.detail_type,
            # As text: PostgreSQL renders it, and no Python JSON round trip is paid per row.
            cast(outbox.c.detail, Text).label("detail"),
            outbox.c.correlation_id,
            outbox.c.trace_header,
            outbox.c.attempts,
        )
    )
    with engine.begin() as conn:
        rows = conn.execute(claim, {"lease": lease}).all()
    return sorted(rows, key=lambda r: r.id)  # RETURNING has no order: oldest first


# Per-row backoff, computed in the mark's UPDATE from the attempts before this one:
# min(cap, base * 2^attempts), jittered to 50-100 % so refused rows do not return together.
_BACKOFF = text(
    "now() + least(:backoff_cap * interval '1 second',"
    " :backoff_base * interval '1 second' * power(2, least(attempts, 20)))"
    " * (0.5 + random() / 2)"
).bindparams(backoff_cap=BACKOFF_CAP.total_seconds(), backoff_base=BACKOFF_BASE.total_seconds())


def _mark(engine: Engine, put: PutResult) -> RelayResult:
    result = RelayResult(published=len(put.published))
    with engine.begin() as conn:
        if put.published:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([e.key for e in put.published]))
                .values(published_at=func.now(), claimed_until=None)
            )
        for failure in put.call_failed:
            # EventBridge's fault, not the row's: free it at once, no backoff.
            _record(conn, failure, claimed_until=None)
            result.failed += 1
        for failure in put.refused:
            if failure.permanent:
                _record(
                    conn, failure, parked_at=func.now(), parked_reason=_reason(failure), claimed_until=None
                )
                result.parked += 1
                result.parked_reasons.append(failure.error_code)
                logger.error(
                    "event refused for good; parked in the outbox for an operator",
                    extra={"outbox_id": failure.event.key, "error_code": failure.error_code},
                )
            else:
                _record(conn, failure, claimed_until=None, backoff=True)
                result.failed += 1
        if put.unsent:
            conn.execute(
                update(outbox).where(outbox.c.id.in_([e.key for e in put.unsent])).values(claimed_until=None)
            )
            result.failed += len(put.unsent)
    if put.call_failed or put.refused:
        logger.warning(
            "events not published; they stay in the outbox",
            extra={
                "call_failed": len(put.call_failed),
                "refused": len(put.refused),
                "codes": sorted({f.error_code for f in put.call_failed + put.refused}),
            },
        )
    return result


def _reason(failure: FailedEvent) -> str:
    return f"{failure.error_code}: {failure.error_message}"[:1000]


def _record(conn: Connection, failure: FailedEvent, *, backoff: bool = False, **values: Any) -> None:
    values.update(attempts=outbox.c.attempts + 1, last_error=_reason(failure))
    if backoff:
        values["next_attempt_at"] = _BACKOFF
    conn.execute(
        update(outbox)
        .where(outbox.c.id == failure.event.key, outbox.c.published_at.is_(None))
        .values(**values)
    )


def publish_committed(
    engine: Engine, publisher: EventBridgePublisher, ids: Sequence[int], *, budget_s: float
) -> RelayResult | None:
    """Publish rows a function has just committed, without waiting for the relay.

    A best-effort fast path: at most one PutEvents attempt per batch, started only
    if it can end within ``budget_s`` (the caller's remaining time minus a margin).
    Never raises: what it does not publish (refused, failed, out of time, a crash)
    waits in the outbox for the scheduled relay, so the caller's work (an HTTP 201,
    a consumed event) stands.
    """
    if not ids:
        return None
    if budget_s < publisher.call_bound_s:
        logger.info(
            "no time left to publish after commit; the outbox relay will", extra={"budget_s": budget_s}
        )
        return None
    deadline = time.monotonic() + budget_s
    try:
        return relay(engine, publisher, ids=ids, time_left=lambda: deadline - time.monotonic())
    except Exception:
        logger.exception("publishing after commit failed; the outbox relay will retry")
        return None


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
