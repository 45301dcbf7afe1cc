"""EventBridgePublisher against a scripted client: batching, one attempt, error classes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

from common.publisher import EventBridgePublisher, OutgoingEvent


class ScriptedEvents:
    """Answers put_events from a script: per call, the entry indexes to refuse, or an exception."""

    def __init__(self, script: list[Any], code: str = "InternalFailure") -> None:
        self.script = script
        self.code = code
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        step = self.script.pop(0) if self.script else set()
        if isinstance(step, Exception):
            raise step
        results = [
            {"ErrorCode": self.code, "ErrorMessage": "x"} if i in step else {"EventId": f"e{i}"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(step), "Entries": results}


def events(n: int, detail: str = "{}") -> list[OutgoingEvent]:
    return [
        OutgoingEvent(key=i, source="orders.service", detail_type="OrderCreated", detail=detail)
        for i in range(n)
    ]


def test_batches_of_ten_one_call_each():
    client = ScriptedEvents([])
    result = EventBridgePublisher(client, "bus").put(events(23))
    # The calls are in flight together: which one the client records first is the scheduler's.
    assert sorted(len(c) for c in client.calls) == [3, 10, 10]
    assert len(result.published) == 23 and not result.refused and not result.call_failed


def test_refused_entries_are_reported_not_retried():
    client = ScriptedEvents([{1, 3}])
    result = EventBridgePublisher(client, "bus").put(events(5))
    assert len(client.calls) == 1
    assert [f.event.key for f in result.refused] == [1, 3]
    assert not result.refused[0].permanent
    assert [e.key for e in result.published] == [0, 2, 4]


def test_a_failed_call_leaves_the_later_batches_unsent():
    timeout = ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
    client = ScriptedEvents([set(), timeout])
    result = EventBridgePublisher(client, "bus", concurrency=1).put(events(25))
    assert len(client.calls) == 2
    assert len(result.published) == 10
    assert [f.error_code for f in result.call_failed] == ["ReadTimeoutError"] * 10
    assert len(result.unsent) == 5


def test_an_oversized_entry_is_refused_for_good_without_being_sent():
    big = OutgoingEvent(key="big", source="orders.service", detail_type="OrderCreated", detail="x" * 300_000)
    client = ScriptedEvents([])
    result = EventBridgePublisher(client, "bus").put([big, *events(2)])
    [refused] = result.refused
    assert refused.event.key == "big" and refused.permanent and refused.error_code == "EntryTooLarge"
    assert [len(c) for c in client.calls] == [2]


def test_a_whole_call_refused_for_good_is_split_to_find_the_bad_entry():
    denied = ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "PutEvents")
    client = ScriptedEvents([denied, set(), denied, set()])
    result = EventBridgePublisher(client, "bus").put(events(3))
    assert [len(c) for c in client.calls] == [3, 1, 1, 1]
    assert [f.event.key for f in result.refused] == [1] and result.refused[0].permanent
    assert [e.key for e in result.published] == [0, 2]


def test_no_call_starts_without_the_time_for_it():
    client = ScriptedEvents([])
    result = EventBridgePublisher(client, "bus", call_bound_s=1.5).put(events(3), time_left=lambda: 1.0)
    assert client.calls == [] and len(result.unsent) == 3


def test_the_trace_header_travels_with_its_entry():
    client = ScriptedEvents([])
    traced = OutgoingEvent(
        key=1, source="s", detail_type="T", detail="{}", trace_header="Root=1-abc;Sampled=1"
    )
    EventBridgePublisher(client, "bus").put([traced, *events(1)])
    assert client.calls[0][0]["TraceHeader"] == "Root=1-abc;Sampled=1"
    assert "TraceHeader" not in client.calls[0][1]


def test_calls_go_in_waves_and_a_failed_wave_stops_the_rest():
    timeout = ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
    client = ScriptedEvents([timeout])  # the first call of the first wave fails
    result = EventBridgePublisher(client, "bus", concurrency=2).put(events(45))
    assert len(client.calls) == 2  # one wave of two calls, then nothing
    assert len(result.call_failed) == 10 and len(result.published) == 10 and len(result.unsent) == 25
