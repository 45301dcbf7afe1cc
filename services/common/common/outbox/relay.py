"""Publishing the outbox: ``relay`` (the scheduled run) and ``publish_committed`` (the
fast path right after a writer's commit); see ``common.outbox`` for the three steps
and what happens to a row that was not published."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import BigInteger, Interval, Text, bindparam, cast, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from common.db import retry_on_disconnect
from common.observability import logger
from common.outbox.tables import outbox
from common.outbox.writer import take_leased
from common.publisher import EventBridgePublisher, FailedEvent, OutgoingEvent, PutResult

CLAIM_SIZE = 100  # rows per claim: ten PutEvents calls (four at a time) between two short transactions
BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_CAP = timedelta(seconds=60)  # the relay's schedule: a refused row waits at most a run
LEASE_MARGIN = timedelta(seconds=30)  # a lease outlives its holder's PutEvents by this much

# = ANY(array), not IN (...): one SQL text whatever the number of ids.
_IDS = outbox.c.id == func.any(bindparam("ids", type_=ARRAY(BigInteger)))
_MARK_PUBLISHED = update(outbox).where(_IDS).values(published_at=func.now(), claimed_until=None)
_RELEASE = update(outbox).where(_IDS, outbox.c.published_at.is_(None)).values(claimed_until=None)
# With the parameter names it is executed with: common.snapstart compiles it.
PRIMED_STATEMENTS = ((_MARK_PUBLISHED, ("ids",)),)


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
    leased = take_leased(engine, ids)
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
