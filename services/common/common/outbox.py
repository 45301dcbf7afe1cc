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

A function that publishes its own rows right after its commit (``publish_committed``)
needs no claim transaction: ``add_event(..., lease=True)`` writes the row already
leased to its writer (``FAST_PATH_LEASE``), and the writer keeps the entry in memory,
so the fast path is PutEvents and then the mark, nothing more. Relays leave a leased
row alone; if the writer never publishes it (a crash, no time left), the lease ends
and the next relay run does.

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

import contextlib
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
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
# A row written for the fast path is leased to its writer this long from its INSERT: the
# rest of the writer's transaction, its one PutEvents call (1.8 s at most) and its mark
# fit in it many times over; a row whose writer died waits this long, then a relay run.
FAST_PATH_LEASE = timedelta(seconds=60)
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
# The detail goes in as JSON text, cast by PostgreSQL: it is serialised once, and the
# same text is what the fast path sends.
_ADD_EVENT = (
    outbox.insert().values(detail=cast(bindparam("detail", type_=Text), JSONB)).returning(outbox.c.id)
)
# clock_timestamp(), not now(): the lease counts from the INSERT, not from the start of
# the writer's transaction.
_ADD_LEASED_EVENT = _ADD_EVENT.values(
    claimed_until=func.clock_timestamp() + text(f"interval '{int(FAST_PATH_LEASE.total_seconds())} seconds'")
)
# = ANY(array), not IN (...): one SQL text whatever the number of ids.
_IDS = outbox.c.id == func.any(bindparam("ids", type_=ARRAY(BigInteger)))
_MARK_PUBLISHED = update(outbox).where(_IDS).values(published_at=func.now(), claimed_until=None)
_RELEASE = update(outbox).where(_IDS, outbox.c.published_at.is_(None)).values(claimed_until=None)
_MARK_PROCESSED = (
    insert(processed_events)
    .values(consumer=bindparam("consumer"), event_id=bindparam("event_id"))
    .on_conflict_do_nothing()
    .returning(processed_events.c.event_id)
)
# Each with the parameter names it is executed with (they are part of SQLAlchemy's cache
# key): common.snapstart compiles them before a SnapStart snapshot.
_ADD_EVENT_PARAMETERS = ("event_id", "source", "detail_type", "detail", "correlation_id", "trace_header")
PRIMED_STATEMENTS = (
    (_ADD_LEASED_EVENT, _ADD_EVENT_PARAMETERS),
    (_MARK_PROCESSED, ("consumer", "event_id")),
    (_MARK_PUBLISHED, ("ids",)),
)


@dataclass(frozen=True)
class _Leased:
    engine: Engine  # the database it was written to (tests run many; a container one)
    written_at: float  # time.monotonic()
    event: OutgoingEvent


# The rows this process wrote leased to itself and has not yet published, by outbox id:
# what the fast path sends, with no claim transaction to read them back. One Lambda
# container runs one invocation at a time; entries of a transaction that did not commit
# are dropped (``forget``). An entry is used only while its lease surely holds (half of
# it): after that a relay may have published the row.
_leased: dict[int, _Leased] = {}


def add_event(conn: Connection, event: DomainEvent, *, lease: bool = False) -> int:
    """Store ``event`` for publishing; returns its outbox id. Call inside the state's transaction.

    ``lease=True``: the row is leased to this process for ``FAST_PATH_LEASE``, for
    ``publish_committed`` to publish once the transaction commits (or ``forget`` if it
    does not); relays take it only once the lease has ended.
    """
    detail = event.model_dump_json(by_alias=True)
    # Lambda's runtime sets this per invocation (sampled or not): keeping it lets
    # the relay's later PutEvents continue the writer's trace. A dict lookup.
    trace_header = os.environ.get("_X_AMZN_TRACE_ID") or None
    row = conn.execute(
        _ADD_LEASED_EVENT if lease else _ADD_EVENT,
        {
            "event_id": event.metadata.event_id,
            "source": event.SOURCE,
            "detail_type": event.DETAIL_TYPE,
            "detail": detail,
            "correlation_id": event.metadata.correlation_id,
            "trace_header": trace_header,
        },
    )
    outbox_id = int(row.scalar_one())
    if lease:
        outgoing = OutgoingEvent(
            key=outbox_id,
            source=event.SOURCE,
            detail_type=event.DETAIL_TYPE,
            detail=detail,
            correlation_id=event.metadata.correlation_id,
            trace_header=trace_header,
        )
        _leased[outbox_id] = _Leased(conn.engine, time.monotonic(), outgoing)
    return outbox_id


def _take_leased(engine: Engine, ids: Sequence[int]) -> list[OutgoingEvent]:
    """The entries of ``ids`` this process may still publish without a claim; drops them,
    and any entry too old to trust."""
    fresh_after = time.monotonic() - FAST_PATH_LEASE.total_seconds() / 2
    taken = []
    for outbox_id in ids:
        entry = _leased.pop(outbox_id, None)
        if entry is not None and entry.engine is engine and entry.written_at > fresh_after:
            taken.append(entry.event)
    for outbox_id in [i for i, e in _leased.items() if e.written_at <= fresh_after]:
        del _leased[outbox_id]
    return taken


def forget(ids: Sequence[int]) -> None:
    """Drop leased entries whose transaction did not commit (their rows do not exist)."""
    for outbox_id in ids:
        _leased.pop(outbox_id, None)


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
    refused: int = 0  # of ``failed``: in calls refused as a whole (access denied, no bus...)

    def add(self, other: RelayResult) -> None:
        self.published += other.published
        self.failed += other.failed
        self.parked += other.parked
        self.parked_reasons += other.parked_reasons
        self.refused += other.refused


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
    result = RelayResult(published=len(put.published), refused=put.call_refused)
    with engine.begin() as conn:
        if put.published:
            conn.execute(_MARK_PUBLISHED, {"ids": [e.key for e in put.published]})
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
    Rows this process wrote leased (``add_event(..., lease=True)``) are sent from
    memory and then marked: one short transaction. Any other row is claimed first,
    as a relay claims. Never raises: what it does not publish (refused, failed, out
    of time, a crash) waits in the outbox for the scheduled relay, so the caller's
    work (an HTTP 201, a consumed event) stands.
    """
    if not ids:
        return None
    leased = _take_leased(engine, ids)
    held = {e.key for e in leased}
    others = [i for i in ids if i not in held]
    if budget_s < publisher.call_bound_s:
        logger.info(
            "no time left to publish after commit; the outbox relay will", extra={"budget_s": budget_s}
        )
        if leased:  # the next relay run, not the lease's end, is when they go out
            with contextlib.suppress(Exception):
                retry_on_disconnect(functools.partial(_release, engine, sorted(held)), engine=engine)
        return None
    deadline = time.monotonic() + budget_s

    def time_left() -> float:
        return deadline - time.monotonic()

    try:
        result = RelayResult()
        if leased:
            put = publisher.put(leased, time_left=time_left)
            result.add(retry_on_disconnect(functools.partial(_mark, engine, put), engine=engine))
        if others:
            result.add(relay(engine, publisher, ids=others, time_left=time_left))
        return result
    except Exception:
        # A leased row that was not marked is published again once its lease ends.
        logger.exception("publishing after commit failed; the outbox relay will retry")
        return None


def _release(engine: Engine, ids: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(_RELEASE, {"ids": ids})


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
