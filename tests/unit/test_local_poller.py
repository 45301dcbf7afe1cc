"""``orderflow local``'s queue pollers: one event per invocation, deletes in batches."""

from __future__ import annotations

import io
import json
from typing import Any

from orderflow import emulator
from orderflow.local import Options, Suite
from orderflow.logs import LogSink

CONSUMER = emulator.ConsumerQueue("InventoryFunction", "rule", {}, 2, "queue-url", "dlq-url")


class FakeSqs:
    """Hands out the given receives in turn, then stops the suite."""

    def __init__(self, suite: Suite, receives: list[int]) -> None:
        self.suite, self.receives = suite, receives
        self.deleted: list[list[str]] = []
        self.next_id = 0

    def receive_message(self, **request: Any) -> dict[str, Any]:
        if not self.receives:
            self.suite.stop_event.set()
            return {}
        messages = []
        for _ in range(self.receives.pop(0)):
            self.next_id += 1
            body = json.dumps({"id": str(self.next_id), "detail": {}})
            messages.append({"Body": body, "ReceiptHandle": f"h{self.next_id}", "Attributes": {}})
        return {"Messages": messages}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        assert QueueUrl == "queue-url" and len(Entries) <= 10
        self.deleted.append([e["ReceiptHandle"] for e in Entries])
        return {}


def _suite(invoked: list[str]) -> Suite:
    suite = Suite(Options(), LogSink(stream=io.StringIO()))
    suite.invoke = lambda function_id, event: invoked.append(event["id"])  # type: ignore[method-assign]
    return suite


def test_each_event_is_one_invocation_and_deletes_go_ten_at_a_time() -> None:
    invoked: list[str] = []
    suite = _suite(invoked)
    sqs = FakeSqs(suite, [3, 4, 5, 1])
    suite.poll(CONSUMER, sqs)
    assert invoked == [str(i) for i in range(1, 14)]
    assert [len(d) for d in sqs.deleted] == [10, 3]  # the last three when the queue ran dry
    assert [h for d in sqs.deleted for h in d] == [f"h{i}" for i in range(1, 14)]


def test_an_empty_receive_deletes_what_was_delivered() -> None:
    invoked: list[str] = []
    suite = _suite(invoked)
    sqs = FakeSqs(suite, [2, 0, 1])
    suite.poll(CONSUMER, sqs)
    assert sqs.deleted == [["h1", "h2"], ["h3"]]
