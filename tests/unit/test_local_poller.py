"""``orderflow local``'s queue pollers, as Lambda's SQS event source mapping: a batch per
invocation, partial batch responses honoured, deletes of what was handled only."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from orderflow import emulator
from orderflow.local import ACCOUNT, Options, Suite, consumer_containers, failed_records
from orderflow.logs import LogSink
from orderflow.runtime import InvokeError

QUEUE_ARN = f"arn:aws:sqs:{emulator.REGION}:{emulator.ACCOUNT}:InventoryFunction-queue"


def consumer(batch_size: int = 10, window_s: int = 0) -> emulator.ConsumerQueue:
    return emulator.ConsumerQueue(
        function_id="InventoryFunction",
        rules=("orderflow-local-inventory",),
        queue_url="queue-url",
        queue_arn=QUEUE_ARN,
        dlq_url="dlq-url",
        batch_size=batch_size,
        batching_window_s=window_s,
        max_receive_count=16,
    )


class FakeSqs:
    """Hands out the given receives in turn (each at most what was asked for), then stops
    the suite."""

    def __init__(self, suite: Suite, receives: list[int], receive_count: int = 1) -> None:
        self.suite, self.receives, self.receive_count = suite, receives, receive_count
        self.asked: list[int] = []
        self.deleted: list[list[str]] = []
        self.visibility: list[tuple[str, int]] = []
        self.next_id = 0

    def receive_message(self, **request: Any) -> dict[str, Any]:
        assert request["QueueUrl"] == "queue-url"
        self.asked.append(request["MaxNumberOfMessages"])
        if not self.receives:
            self.suite.stop_event.set()
            return {}
        wanted = self.receives.pop(0)
        if wanted > request["MaxNumberOfMessages"]:  # the rest stays for the next receive
            self.receives.insert(0, wanted - request["MaxNumberOfMessages"])
            wanted = request["MaxNumberOfMessages"]
        messages = []
        for _ in range(wanted):
            self.next_id += 1
            body = json.dumps({"id": f"e{self.next_id}", "detail-type": "OrderCreated", "detail": {}})
            messages.append(
                {
                    "MessageId": f"m{self.next_id}",
                    "Body": body,
                    "ReceiptHandle": f"h{self.next_id}",
                    "Attributes": {"ApproximateReceiveCount": str(self.receive_count), "SentTimestamp": "1"},
                    "MessageAttributes": {"kind": {"StringValue": "x", "DataType": "String"}},
                }
            )
        return {"Messages": messages}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        assert QueueUrl == "queue-url" and len(Entries) <= 10
        self.deleted.append([e["ReceiptHandle"] for e in Entries])
        return {}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.visibility += [(e["ReceiptHandle"], e["VisibilityTimeout"]) for e in Entries]
        return {}


def _suite(
    answer: Any = None, retry_delay_s: float | None = None
) -> tuple[Suite, list[dict[str, Any]], io.StringIO]:
    """A suite whose consumer answers ``answer(event)`` (or None), recording each event."""
    log = io.StringIO()
    suite = Suite(Options(retry_delay_s=retry_delay_s), LogSink(stream=log))
    invoked: list[dict[str, Any]] = []

    def invoke(function_id: str, event: dict[str, Any]) -> Any:
        assert function_id == "InventoryFunction"
        invoked.append(event)
        return answer(event) if callable(answer) else answer

    suite.invoke = invoke  # type: ignore[method-assign]
    return suite, invoked, log


def test_each_receive_is_one_invocation_with_lambda_s_sqs_records() -> None:
    suite, invoked, _ = _suite()
    sqs = FakeSqs(suite, [3, 1])
    suite.poll(consumer(), sqs)
    assert [len(e["Records"]) for e in invoked] == [3, 1]
    record = invoked[0]["Records"][0]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert (record["messageId"], record["receiptHandle"]) == ("m1", "h1")
    assert (record["eventSource"], record["eventSourceARN"]) == ("aws:sqs", QUEUE_ARN)
    assert record["attributes"] == {"ApproximateReceiveCount": "1", "SentTimestamp": "1"}
    assert record["messageAttributes"]["kind"]["stringValue"] == "x"
    # the body stays the event's JSON text, with the account EventBridge sends and moto does not
    assert json.loads(record["body"]) == {
        "id": "e1",
        "detail-type": "OrderCreated",
        "detail": {},
        "account": ACCOUNT,
    }
    assert sqs.deleted == [["h1", "h2", "h3", "h4"]]  # when a receive found the queue empty


def test_a_receive_asks_for_the_batch_size_and_deletes_go_ten_at_a_time() -> None:
    suite, invoked, _ = _suite()
    sqs = FakeSqs(suite, [10, 2])
    suite.poll(consumer(batch_size=4), sqs)
    assert set(sqs.asked) == {4}
    assert [len(e["Records"]) for e in invoked] == [4, 4, 2, 2]
    assert [len(d) for d in sqs.deleted] == [10, 2]
    assert [h for d in sqs.deleted for h in d] == [f"h{i}" for i in range(1, 13)]


def test_with_a_batching_window_receives_fill_the_batch() -> None:
    suite, invoked, _ = _suite()
    sqs = FakeSqs(suite, [3, 4, 5])
    suite.poll(consumer(batch_size=10, window_s=5), sqs)
    # 3, then 4 more, then the 3 that fill it: one invocation of ten; the last 2 wait
    # out the window (the fake's next receive is empty and stops the suite)
    assert sqs.asked[:3] == [10, 7, 3]
    assert [len(e["Records"]) for e in invoked] == [10]


def test_only_the_records_not_reported_failed_are_deleted() -> None:
    def answer(event: dict[str, Any]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"][1::2]]}

    suite, _, log = _suite(answer)
    sqs = FakeSqs(suite, [5])
    suite.poll(consumer(), sqs)
    assert sqs.deleted == [["h1", "h3", "h5"]]
    assert sqs.visibility == []  # the function's own backoff (or the queue's timeout) stands
    lines = log.getvalue()
    assert "InventoryFunction failed on event e2 (receive 1 of 16)" in lines
    assert "InventoryFunction failed on event e4 (receive 1 of 16)" in lines
    assert "event e1 " not in lines


def test_a_failed_invocation_fails_the_whole_batch_and_says_so() -> None:
    def answer(event: dict[str, Any]) -> None:
        raise InvokeError({"errorType": "TimeoutError", "errorMessage": "Task timed out"})

    suite, _, log = _suite(answer)
    sqs = FakeSqs(suite, [2], receive_count=16)
    suite.poll(consumer(), sqs)
    assert sqs.deleted == []
    assert log.getvalue().count("TimeoutError: Task timed out") == 2
    assert (
        "(receive 16 of 16)" in log.getvalue() and "SQS moves it to the dead-letter queue" in log.getvalue()
    )


def test_retry_delay_makes_failed_records_visible_again_after_it() -> None:
    suite, _, _ = _suite({"batchItemFailures": [{"itemIdentifier": "m2"}]}, retry_delay_s=0.2)
    sqs = FakeSqs(suite, [3])
    suite.poll(consumer(), sqs)
    assert sqs.deleted == [["h1", "h3"]]
    assert sqs.visibility == [("h2", 0)]


IDS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}, {"b", "c"}),
        # as Lambda: an identifier missing, empty, null or unknown fails the whole batch
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, set(IDS)),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, set(IDS)),
        ({"batchItemFailures": [{"id": "b"}]}, set(IDS)),
        ({"batchItemFailures": [{"itemIdentifier": "z"}]}, set(IDS)),
        ({"batchItemFailures": "b"}, set(IDS)),
        ("not an object", set(IDS)),
    ],
)
def test_a_batch_response_is_read_as_lambda_reads_it(answer: Any, failed: set[str]) -> None:
    assert failed_records(answer, IDS)[0] == failed


def test_a_container_s_poller_invokes_that_container() -> None:
    suite, _, _ = _suite()
    called: list[str] = []
    suite.invoke = lambda key, event: called.append(key)  # type: ignore[assignment,method-assign,misc,return-value]
    suite.poll(consumer(), FakeSqs(suite, [2, 1]), "InventoryFunction#2")
    assert called == ["InventoryFunction#2", "InventoryFunction#2"]


def test_each_consumer_gets_the_containers_asked_for_at_most_its_maximum_concurrency() -> None:
    def queue(function_id: str, most: int | None) -> emulator.ConsumerQueue:
        return emulator.ConsumerQueue(function_id, (), "u", "a", None, max_concurrency=most)

    queues = [queue("InventoryFunction", 10), queue("NotificationsFunction", 2), queue("Other", None)]
    assert consumer_containers(queues, 1) == {"InventoryFunction": 1, "NotificationsFunction": 1, "Other": 1}
    assert consumer_containers(queues, 3) == {"InventoryFunction": 3, "NotificationsFunction": 2, "Other": 3}
