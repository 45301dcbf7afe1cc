"""Writing events into the outbox, in the transaction of the state they announce,
and the fast path's memory of the rows this process wrote leased to itself."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Text, bindparam, cast, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from common.events import DomainEvent
from common.outbox.tables import outbox
from common.publisher import OutgoingEvent

# A row written for the fast path is leased to its writer this long from its INSERT: the
# rest of the writer's transaction, its one PutEvents call (1.8 s at most) and its mark
# fit in it many times over; a row whose writer died waits this long, then a relay run.
FAST_PATH_LEASE = timedelta(seconds=60)

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
_ADD_EVENT_PARAMETERS = ("event_id", "source", "detail_type", "detail", "correlation_id", "trace_header")
# With the parameter names it is executed with (part of SQLAlchemy's cache key):
# common.snapstart compiles it before a SnapStart snapshot.
PRIMED_STATEMENTS = ((_ADD_LEASED_EVENT, _ADD_EVENT_PARAMETERS),)


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


def take_leased(engine: Engine, ids: Sequence[int]) -> list[OutgoingEvent]:
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
