"""EventBridge publisher adapter: batches of at most 10, partial failures retried."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.observability import logger

MAX_ENTRIES_PER_CALL = 10  # the PutEvents limit


@dataclass(frozen=True)
class OutgoingEvent:
    """One entry for PutEvents; ``key`` lets the caller match results to its rows."""

    key: Any
    source: str
    detail_type: str
    detail: str  # JSON text
    correlation_id: str | None = None


@dataclass(frozen=True)
class FailedEvent:
    event: OutgoingEvent
    error_code: str
    error_message: str


class PublishError(RuntimeError):
    """Some events could not be published after every retry."""

    def __init__(self, failed: list[FailedEvent], published: list[OutgoingEvent]) -> None:
        self.failed = failed
        self.published = published
        codes = sorted({f.error_code for f in failed})
        super().__init__(f"{len(failed)} event(s) not published ({', '.join(codes)})")


class EventBridgePublisher:
    """Puts events on one bus.

    PutEvents can accept some entries of a call and refuse others
    (``FailedEntryCount``): only the refused entries are sent again, with jittered
    exponential backoff. A call that raises (throttling, network) counts as every
    entry of that call failing; boto3 has already retried it per its retry mode.
    """

    def __init__(self, client: Any, bus_name: str, *, max_attempts: int = 3, base_delay: float = 0.1) -> None:
        self._client = client
        self._bus_name = bus_name
        self._max_attempts = max_attempts
        self._base_delay = base_delay

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        published: list[OutgoingEvent] = []
        failed: list[FailedEvent] = []
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            ok, bad = self._publish_batch(list(events[start : start + MAX_ENTRIES_PER_CALL]))
            published += ok
            failed += bad
        if failed:
            raise PublishError(failed, published)

    def _publish_batch(self, pending: list[OutgoingEvent]) -> tuple[list[OutgoingEvent], list[FailedEvent]]:
        published: list[OutgoingEvent] = []
        failures: list[FailedEvent] = []
        for attempt in range(1, self._max_attempts + 1):
            failures = self._put(pending, published)
            if not failures:
                break
            pending = [f.event for f in failures]
            if attempt < self._max_attempts:
                delay = self._base_delay * 2 ** (attempt - 1) * (1 + random.random())
                logger.warning(
                    "PutEvents refused entries; retrying them",
                    extra={
                        "failed": len(failures),
                        "attempt": attempt,
                        "codes": sorted({f.error_code for f in failures}),
                    },
                )
                time.sleep(delay)
        return published, failures

    def _put(self, batch: list[OutgoingEvent], published: list[OutgoingEvent]) -> list[FailedEvent]:
        entries = [
            {
                "EventBusName": self._bus_name,
                "Source": e.source,
                "DetailType": e.detail_type,
                "Detail": e.detail,
            }
            for e in batch
        ]
        try:
            response = self._client.put_events(Entries=entries)
        except Exception as exc:  # botocore errors: the whole call failed
            logger.warning("PutEvents call failed", extra={"error": repr(exc)})
            return [FailedEvent(e, type(exc).__name__, str(exc)) for e in batch]
        failures: list[FailedEvent] = []
        for event, result in zip(batch, response.get("Entries", []), strict=False):
            if result.get("ErrorCode"):
                failures.append(FailedEvent(event, result["ErrorCode"], result.get("ErrorMessage", "")))
            else:
                published.append(event)
        # Defensive: a response with fewer results than entries leaves the rest unknown.
        unanswered = batch[len(response.get("Entries", [])) :]
        failures += [FailedEvent(e, "NoResult", "no result for entry") for e in unanswered]
        return failures
