"""The local suite's emulator process (``python -m orderflow.emulator``): moto's server
with its per-request waste cut (``_spare_moto_repeated_work``) and kept-alive
connections. What moto answers must not change: only how much it costs."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from orderflow import emulator
from tests.support.local_suite import free_ports

pytestmark = pytest.mark.aws


@pytest.fixture(scope="module")
def aws() -> Iterator[emulator.Emulator]:
    server = emulator.Emulator(free_ports(1)[0])
    server.start()
    try:
        yield server
    finally:
        assert server.stop(), "the emulator had to be killed"


def _list_queues(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request(
        "POST",
        "/",
        body="Action=ListQueues&Version=2012-11-05",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    return conn.getresponse()


def test_one_connection_serves_many_requests(aws: emulator.Emulator) -> None:
    conn = http.client.HTTPConnection(aws.host, aws.port, timeout=5)
    try:
        for _ in range(3):
            response = _list_queues(conn)
            assert response.status == 200
            assert response.getheader("Connection") != "close"
            response.read()
        first = conn.sock
        assert _list_queues(conn).status == 200
        assert conn.sock is first  # not reconnected
    finally:
        conn.close()


def test_queue_counts_and_delivery_are_moto_s(aws: emulator.Emulator) -> None:
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="emulator-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name="emulator-test")
    events.put_rule(
        Name="to-queue",
        EventBusName="emulator-test",
        EventPattern=json.dumps({"source": ["orders.service"]}),
    )
    events.put_targets(Rule="to-queue", EventBusName="emulator-test", Targets=[{"Id": "q", "Arn": arn}])
    detail = {"orderId": "o-1", "note": 'quotes " and <angles>', "items": [{"sku": "A", "quantity": 2}]}
    for source in ("orders.service", "orders.service", "someone.else"):
        entry = {"EventBusName": "emulator-test", "Source": source, "DetailType": "OrderCreated"}
        answer = events.put_events(Entries=[{**entry, "Detail": json.dumps(detail)}])
        assert answer["FailedEntryCount"] == 0

    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "2"  # the rule's pattern matched two
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30)["Messages"]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "1"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
    body = json.loads(got[0]["Body"])
    # moto's default input template: these keys, the detail untouched.
    assert set(body) == {"id", "time", "version", "detail-type", "source", "region", "resources", "detail"}
    assert (body["source"], body["detail-type"], body["detail"]) == ("orders.service", "OrderCreated", detail)
    assert len(got[0]["ReceiptHandle"]) == 185


def test_a_message_is_deleted_by_its_current_or_an_older_receipt_handle(aws: emulator.Emulator) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="emulator-delete")["QueueUrl"]
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)["Messages"][0]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)["Messages"][0]
    assert again["MessageId"] == first["MessageId"]  # a new receipt handle for the same message
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])  # the older handle
    second = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert [m["Body"] for m in second] == ["second"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second[0]["ReceiptHandle"])  # the current one
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second[0]["ReceiptHandle"])  # again: no error
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0"
