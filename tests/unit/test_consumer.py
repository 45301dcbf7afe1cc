"""The shared consumer runner on a batch, with fakes for the queue (no sockets): what a
failed record becomes, and that pushing back its next receive never fails the batch."""

from __future__ import annotations

from typing import Any

import pytest

from common import bootstrap
from common.consumer import Consumer, Delivery, Outcome
from common.events import OrderCreated
from common.failures import PermanentFailure
from common.settings import Settings
from tests.support.events import eventbridge_event, failed_ids, queue_arn, sqs_event
from tests.unit.test_notifications import order_created

ARN = queue_arn("InventoryFunction")
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/InventoryQueue"


class Sqs:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.fail:
            raise ConnectionResetError("SQS unreachable")
        return {"Successful": [{"Id": e["Id"]} for e in request["Entries"]], "Failed": []}


class Context:
    def __init__(self, remaining_s: float) -> None:
        self.remaining_s = remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_s * 1000)


def consumer(fails: dict[str, BaseException]) -> Consumer:
    """Fails the records whose order's customer is named in ``fails``."""

    def handle(delivery: Delivery[Any]) -> Outcome:
        error = fails.get(delivery.detail.customer_id)
        if error is not None:
            raise error
        return Outcome(None)

    return Consumer((OrderCreated,), handle)


def batch(*customers: str) -> dict[str, Any]:
    return sqs_event(
        *[eventbridge_event(order_created().model_copy(update={"customer_id": c})) for c in customers],
        source_arn=ARN,
    )


@pytest.fixture
def sqs() -> Any:
    fake = Sqs()
    bootstrap.override(settings=Settings(), sqs_client=fake)
    yield fake
    bootstrap.override()


def test_a_transient_failure_is_reported_and_its_next_receive_pushed_back(sqs):
    event = batch("ok-1", "down", "ok-2")
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "3"

    response = consumer({"down": ConnectionResetError("database gone")}).process(event, Context(30))

    assert failed_ids(response) == [event["Records"][1]["messageId"]]
    [call] = sqs.calls
    assert call["QueueUrl"] == URL
    [entry] = call["Entries"]
    assert entry["ReceiptHandle"] == event["Records"][1]["receiptHandle"]
    assert 60 <= entry["VisibilityTimeout"] <= 120  # third receive: 2 min, jittered to 50-100 %


def test_a_permanent_failure_is_reported_without_a_backoff(sqs):
    event = batch("bad", "ok")
    response = consumer({"bad": PermanentFailure("contract broken")}).process(event, Context(30))
    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert sqs.calls == []


def test_a_failing_backoff_call_never_fails_the_batch(sqs):
    sqs.fail = True
    event = batch("down", "ok")
    response = consumer({"down": TimeoutError("SES")}).process(event, Context(30))
    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert len(sqs.calls) == 1


def test_no_backoff_call_starts_without_the_time_to_end_it(sqs):
    event = batch("down")
    response = consumer({"down": TimeoutError("SES")}).process(event, Context(1.0))
    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert sqs.calls == []  # one SQS call may take 1.5 s: not started with 1 s left
