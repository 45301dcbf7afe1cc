"""EventBridgePublisher against a scripted client: batching and partial failures."""

from __future__ import annotations

from typing import Any

import pytest

from common.publisher import EventBridgePublisher, OutgoingEvent, PublishError


class ScriptedEvents:
    """Answers put_events from a script: per call, the entry indexes to refuse, or an exception."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        step = self.script.pop(0) if self.script else set()
        if isinstance(step, Exception):
            raise step
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "x"} if i in step else {"EventId": f"e{i}"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(step), "Entries": results}


def events(n: int) -> list[OutgoingEvent]:
    return [
        OutgoingEvent(key=i, source="orders.service", detail_type="OrderCreated", detail="{}")
        for i in range(n)
    ]


def publisher(client: ScriptedEvents, attempts: int = 3) -> EventBridgePublisher:
    return EventBridgePublisher(client, "bus", max_attempts=attempts, base_delay=0)


def test_entries_go_in_batches_of_at_most_ten():
    client = ScriptedEvents([])
    publisher(client).publish(events(23))
    assert [len(c) for c in client.calls] == [10, 10, 3]
    assert all(e["EventBusName"] == "bus" for call in client.calls for e in call)


def test_only_the_refused_entries_are_sent_again():
    # Given PutEvents refuses entries 1 and 3 of the first call
    client = ScriptedEvents([{1, 3}])
    # When publishing 5 events
    publisher(client).publish(events(5))
    # Then the second call carries exactly the two refused entries
    assert len(client.calls) == 2
    assert client.calls[1] == [client.calls[0][1], client.calls[0][3]]


def test_entries_still_refused_after_every_attempt_raise_with_what_was_published():
    client = ScriptedEvents([{0}, {0}, {0}])
    with pytest.raises(PublishError) as raised:
        publisher(client).publish(events(3))
    assert [f.event.key for f in raised.value.failed] == [0]
    assert sorted(e.key for e in raised.value.published) == [1, 2]
    assert len(client.calls) == 3


def test_a_call_that_raises_counts_as_every_entry_failing_then_is_retried():
    client = ScriptedEvents([ConnectionError("down"), set()])
    publisher(client).publish(events(2))
    assert len(client.calls) == 2
