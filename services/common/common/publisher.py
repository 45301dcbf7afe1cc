"""EventBridge publisher adapter: one PutEvents attempt per batch of at most 10.

It never retries by itself: the outbox decides what happens to each entry it
could not publish (per-row backoff, parking, or the next relay run), and the
boto3 client it is given makes one attempt per call (``total_max_attempts=1``),
so a call whose outcome is unknown is never repeated inside one invocation.

What is transient and what is permanent is decided in ``common.failures``. A call
refused as a whole for authorisation or a missing bus (``AccessDeniedException``
...) is transient: an IAM change propagating, a policy fixed later. Its entries are
sent one by one to find out whether one entry is to blame; only if another entry of
the same ``put`` went through (the call as a whole is authorised) is an entry refused
on its own reported ``refused`` (and parked); otherwise they are all ``call_refused``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from common.failures import error_code, is_permanent_entry_error, is_refused_call
from common.observability import logger

MAX_ENTRIES_PER_CALL = 10  # the PutEvents limit
# PutEvents refuses a request over 256 KiB (entries counted as AWS documents it).
MAX_REQUEST_BYTES = 256 * 1024


@dataclass(frozen=True)
class OutgoingEvent:
    """One entry for PutEvents; ``key`` lets the caller match results to its rows."""

    key: Any
    source: str
    detail_type: str
    detail: str  # JSON text
    correlation_id: str | None = None
    trace_header: str | None = None

    def size(self) -> int:
        """The entry's size as EventBridge counts it (Time counts 14 bytes)."""
        return 14 + len(self.source.encode()) + len(self.detail_type.encode()) + len(self.detail.encode())


@dataclass(frozen=True)
class FailedEvent:
    event: OutgoingEvent
    error_code: str
    error_message: str

    @property
    def permanent(self) -> bool:
        """Wrong in itself (too large, malformed), or refused on its own for its source
        or detail type while the call as a whole is authorised (``PutResult`` decides)."""
        return is_permanent_entry_error(self.error_code) or is_refused_call(self.error_code)


@dataclass
class PutResult:
    """What one ``put`` did with each event.

    ``refused``: EventBridge (or the size check) answered with an error for the entry.
    ``call_failed``: the whole call failed (network, timeout, throttling, 5xx, or
    refused as a whole): the outcome is unknown or transient.
    ``call_refused``: how many of ``call_failed`` were refused as a whole (access
    denied, bus not found...): a fix or a propagation cures it, an operator should know.
    ``unsent``: never sent (a call before failed, or the time budget ran out).
    """

    published: list[OutgoingEvent] = field(default_factory=list)
    refused: list[FailedEvent] = field(default_factory=list)
    call_failed: list[FailedEvent] = field(default_factory=list)
    unsent: list[OutgoingEvent] = field(default_factory=list)
    call_refused: int = 0


class EventBridgePublisher:
    """Puts events on one bus, ``call_bound_s`` being the longest one call can take
    (the client's connect + read timeouts with a single attempt).

    Up to ``concurrency`` calls are in flight at once (boto3 clients are thread-safe):
    a call's time is mostly waiting on the network, so a backlog drains that many
    times faster than call after call. Calls go in waves; after a wave with a failed
    call, later batches stay unsent.
    """

    def __init__(
        self, client: Any, bus_name: str, *, call_bound_s: float = 1.5, concurrency: int = 4
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self.call_bound_s = call_bound_s
        self._concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None

    def put(
        self, events: Sequence[OutgoingEvent], *, time_left: Callable[[], float] | None = None
    ) -> PutResult:
        """One PutEvents call per batch, while ``time_left()`` (seconds) allows one more.

        After a call fails as a whole, the remaining batches are left unsent: the
        next relay run tries them, rather than this one hammering a sick endpoint.
        """
        result = PutResult()
        sendable: list[OutgoingEvent] = []
        for e in events:
            if e.size() > MAX_REQUEST_BYTES:
                result.refused.append(
                    FailedEvent(e, "EntryTooLarge", f"entry is {e.size()} bytes (max 256 KiB)")
                )
            else:
                sendable.append(e)
        batches = _batches(sendable)
        for start in range(0, len(batches), self._concurrency):
            if time_left is not None and time_left() < self.call_bound_s:
                result.unsent += [e for b in batches[start:] for e in b]
                break
            wave = batches[start : start + self._concurrency]
            outcomes = self._wave(wave, time_left)
            for answered, failed in outcomes:
                result.published += answered.published
                result.refused += answered.refused
                result.call_failed += failed
            refused_whole = not result.published and any(
                is_refused_call(f.error_code) for f in result.refused
            )
            if any(failed for _, failed in outcomes) or refused_whole:
                result.unsent += [e for b in batches[start + len(wave) :] for e in b]
                break
        return _authorised(result)

    def _wave(
        self, wave: list[list[OutgoingEvent]], time_left: Callable[[], float] | None
    ) -> list[tuple[PutResult, list[FailedEvent]]]:
        def one(batch: list[OutgoingEvent]) -> tuple[PutResult, list[FailedEvent]]:
            answered = PutResult()
            return answered, self._call(batch, answered, time_left)

        if len(wave) == 1:
            return [one(wave[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="put-events")
        return list(self._pool.map(one, wave))

    def _call(
        self,
        batch: list[OutgoingEvent],
        result: PutResult,
        time_left: Callable[[], float] | None = None,
    ) -> list[FailedEvent]:
        """One call; per-entry outcomes go into ``result``; returns the whole-call failures."""
        entries = []
        for e in batch:
            entry = {
                "EventBusName": self._bus_name,
                "Source": e.source,
                "DetailType": e.detail_type,
                "Detail": e.detail,
            }
            if e.trace_header:
                entry["TraceHeader"] = e.trace_header
            entries.append(entry)
        try:
            response = self._client.put_events(Entries=entries)
        except Exception as exc:  # botocore errors: the whole call failed
            code = error_code(exc)
            if (is_permanent_entry_error(code) or is_refused_call(code)) and len(batch) > 1:
                # One entry can fail a whole call: find it by sending each alone, each
                # call started only if it can end in time.
                failed: list[FailedEvent] = []
                for i, e in enumerate(batch):
                    if time_left is not None and time_left() < self.call_bound_s:
                        result.unsent += batch[i:]
                        break
                    failed += self._call([e], result, time_left)
                return failed
            if is_permanent_entry_error(code) or is_refused_call(code):
                # Alone: refused for what it is, unless the call as a whole is refused
                # (``_authorised`` tells, once the whole ``put`` is known).
                result.refused.append(FailedEvent(batch[0], code, str(exc)[:500]))
                return []
            logger.warning("PutEvents call failed", extra={"error": code, "entries": len(batch)})
            return [FailedEvent(e, code, str(exc)[:500]) for e in batch]
        answers = response.get("Entries", [])
        for event, answer in zip(batch, answers, strict=False):
            if answer.get("ErrorCode"):
                result.refused.append(FailedEvent(event, answer["ErrorCode"], answer.get("ErrorMessage", "")))
            else:
                result.published.append(event)
        # Defensive: a response with fewer results than entries leaves the rest unknown.
        result.refused += [FailedEvent(e, "NoResult", "no result for entry") for e in batch[len(answers) :]]
        return []


def _batches(events: list[OutgoingEvent]) -> list[list[OutgoingEvent]]:
    """At most 10 entries and 256 KiB per call, in order."""
    batches: list[list[OutgoingEvent]] = []
    current: list[OutgoingEvent] = []
    size = 0
    for e in events:
        if current and (len(current) == MAX_ENTRIES_PER_CALL or size + e.size() > MAX_REQUEST_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(e)
        size += e.size()
    if current:
        batches.append(current)
    return batches


def _authorised(result: PutResult) -> PutResult:
    """Entries refused for authorisation or a missing resource are refused for what
    they are only when another entry went through; else the call as a whole is refused
    (transient: the rows are released, nothing is parked)."""
    if result.published:
        return result
    refused_calls = [f for f in result.refused if is_refused_call(f.error_code)]
    if refused_calls:
        logger.warning(
            "PutEvents refused as a whole; the events stay in the outbox",
            extra={"codes": sorted({f.error_code for f in refused_calls}), "entries": len(refused_calls)},
        )
        result.refused = [f for f in result.refused if not is_refused_call(f.error_code)]
        result.call_failed += refused_calls
        result.call_refused += len(refused_calls)
    return result
