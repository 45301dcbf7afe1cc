"""``orderflow dlq``'s decoding and redrive against the local suite's emulator (stock
moto), provisioned from template.yaml: every envelope a consumer's DLQ can hold, and
a redrive into the consumer's own queue that deletes a dead letter only once SQS took
its event back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orderflow import emulator
from orderflow import template as tpl
from orderflow.local import BUS, SENDER
from orderflow.ops.dlq import decode, redrive
from orderflow.ops.target import OpsError, Target
from tests.support.local_suite import free_ports

pytestmark = pytest.mark.aws

EVENT = {
    "version": "0",
    "id": "7f0c1d7e-0000-4000-8000-000000000001",
    "detail-type": "OrderCreated",
    "source": "orders.service",
    "account": "123456789012",
    "time": "2026-12-04T10:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {"orderId": "o-1", "metadata": {"eventId": "e-1"}},
}


@pytest.fixture
def aws() -> Iterator[emulator.Emulator]:
    server = emulator.Emulator(free_ports(1)[0])
    server.start()
    try:
        server.provision(BUS, SENDER, tpl.functions(parameters={"Stage": "local"}))
        yield server
    finally:
        assert server.stop(), "the emulator had to be killed"


def target(aws: emulator.Emulator) -> Target:
    return Target(endpoint=aws.endpoint, bus=BUS)


def _message(body: str, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": body,
        "Attributes": {"SentTimestamp": "1764842400000"},
        "MessageAttributes": {
            k: {"StringValue": v, "DataType": "String"} for k, v in (attributes or {}).items()
        },
    }


def test_each_envelope_is_decoded_to_its_event() -> None:
    redriven = decode(_message(json.dumps(EVENT)))
    assert (redriven.envelope, redriven.event, redriven.error) == ("queue-redrive", EVENT, None)

    refused = decode(
        _message(
            json.dumps(EVENT),
            {"ERROR_CODE": "SQS.AccessDenied", "ERROR_MESSAGE": "not allowed", "RULE_ARN": "r"},
        )
    )
    assert (refused.envelope, refused.event, refused.error) == (
        "rule-dlq",
        EVENT,
        "SQS.AccessDenied: not allowed",
    )

    by_consumer = decode(
        _message(
            json.dumps(EVENT),
            {
                "REFUSED_BY": "InventoryFunction",
                "ERROR_CODE": "InvalidEvent",
                "ERROR_MESSAGE": "invalid OrderCreated detail in event 7f0c",
                "RECEIVE_COUNT": "2",
            },
        )
    )
    assert (by_consumer.envelope, by_consumer.event, by_consumer.attempts) == ("consumer-refused", EVENT, 2)
    assert (
        by_consumer.error
        == "InventoryFunction refused it: InvalidEvent: invalid OrderCreated detail in event 7f0c"
    )

    record = {
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": EVENT,
        "responsePayload": {"errorType": "MessageRejected", "errorMessage": "not verified"},
    }
    old = decode(_message(json.dumps(record)))
    assert (old.envelope, old.event, old.attempts) == ("lambda-destination", EVENT, 3)
    assert old.error == "MessageRejected: not verified"

    assert decode(_message("not json")).envelope == "unknown"
    assert redriven.sent_at == 1764842400.0


def test_redrive_puts_each_event_into_the_consumers_queue_and_only_then_deletes_it(
    aws: emulator.Emulator,
) -> None:
    ops = target(aws)
    sqs = aws.client("sqs")
    dlq, queue = ops.dlq_url("NotificationsFunction"), ops.queue_url("NotificationsFunction")
    as_redriven = json.dumps(EVENT, separators=(",", ":"))  # sent on exactly as it came
    sqs.send_message(QueueUrl=dlq, MessageBody=as_redriven)
    old = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": {**EVENT, "id": "old"}}
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(old))

    assert len(redrive(ops, "NotificationsFunction", dry_run=True)) == 2
    assert _bodies(sqs, queue) == []  # a dry run sends nothing

    done = redrive(ops, "NotificationsFunction")
    assert sorted(d.envelope for d in done) == ["lambda-destination", "queue-redrive"]
    bodies = _bodies(sqs, queue)
    assert as_redriven in bodies
    assert sorted(json.loads(b)["id"] for b in bodies) == sorted([EVENT["id"], "old"])
    assert _bodies(sqs, dlq) == []
    assert redrive(ops, "NotificationsFunction") == []  # nothing left


def test_a_dead_letter_stays_when_its_queue_refuses_it(aws: emulator.Emulator) -> None:
    ops = target(aws)
    sqs = aws.client("sqs")
    dlq = ops.dlq_url("ShippingFunction")
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(EVENT))
    # The queue found, then gone: SQS refuses the SendMessage (QueueDoesNotExist).
    queue = ops.queue_url("ShippingFunction")
    sqs.delete_queue(QueueUrl=queue)
    ops.queue_url = lambda function_id: queue  # type: ignore[method-assign]

    with pytest.raises(OpsError, match="1 message\\(s\\) not redriven"):
        redrive(ops, "ShippingFunction")
    assert [json.loads(b)["id"] for b in _bodies(sqs, dlq)] == [EVENT["id"]]


def _bodies(sqs: Any, url: str) -> list[str]:
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return [m["Body"] for m in got]
