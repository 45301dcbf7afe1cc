"""Consumers on SQS batches, as an event source mapping with ReportBatchItemFailures
hands them: a bad record fails alone, the others take effect once; a record that
failed for a transient reason comes back later and later (ChangeMessageVisibility
growing with its receive count), and SES throttling or a database blink after SES
accepted an email are ridden out with no email lost or doubled.

Real PostgreSQL, real Powertools batch processing, moto's SQS and SES.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from common import bootstrap, consumer
from inventory.handlers import reserve
from notifications.handlers import send_email
from orderflow.lambda_runtime import LambdaContext
from tests.integration.test_inventory import TABLES, levels, order_created, put_stock
from tests.integration.test_notifications import Ses
from tests.integration.test_notifications import order_created as confirmation_event
from tests.support import network
from tests.support.events import eventbridge_event, failed_ids, sqs_event, sqs_record

pytestmark = [pytest.mark.db]


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}  # noqa: S608


@pytest.fixture
def inventory_queue(settings: Any, aws: Any) -> Iterator[tuple[Any, str, str]]:
    """InventoryFunction's queue in moto with its DLQ (redrive policy), and the function's
    parts using that SQS: (sqs client, the queue's ARN, the DLQ's URL)."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="InventoryDLQ")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="InventoryQueue",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "16"})},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    consumer._dead_letter_queues.clear()  # a fresh execution environment
    bootstrap.override(settings=settings, events_client=aws.events, sqs_client=sqs)
    yield sqs, arn, dlq
    bootstrap.override()
    consumer._dead_letter_queues.clear()


def dead_letters(sqs: Any, dlq: str) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", [])


def test_a_batch_of_ten_with_one_malformed_record_dead_letters_it_alone_and_the_nine_take_effect_once(
    inventory_queue, engine
):
    sqs, arn, dlq = inventory_queue
    # Given stock for nine orders, and a batch of ten whose seventh record is not an event
    put_stock(engine, SKU_1=100)
    events: list[dict[str, Any] | str] = [eventbridge_event(order_created(("SKU-1", 2))) for _ in range(9)]
    bad_body = '{"detail-type": "OrderCreated", "detail": "not an order"}'
    events.insert(6, bad_body)
    batch = sqs_event(*events, source_arn=arn)
    context = LambdaContext(function_name="InventoryFunction")

    # When InventoryFunction handles it
    response = reserve.handler(batch, context)

    # Then that record alone went to the DLQ at once, with why; none is left to retry
    assert failed_ids(response) == []
    [letter] = dead_letters(sqs, dlq)
    assert letter["Body"] == bad_body
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes["REFUSED_BY"] == "InventoryFunction"
    assert attributes["ERROR_CODE"] == "InvalidEvent"
    assert "malformed EventBridge event" in attributes["ERROR_MESSAGE"]
    assert attributes["RECEIVE_COUNT"] == "1"
    # And the nine reserved once each
    assert levels(engine) == {"SKU-1": (100, 18)}
    after = counts(engine)
    assert after["inventory.reservations"] == 9 and after["eventing.processed_events"] == 9
    assert after["eventing.outbox"] == 9  # nine InventoryReserved, none for the bad record

    # When the same batch is delivered again (the nine were not deleted, say)
    again = reserve.handler(batch, context)

    # Then the bad record is refused again and nothing else changes
    assert failed_ids(again) == []
    assert counts(engine) == after
    assert levels(engine) == {"SKU-1": (100, 18)}


def test_a_record_refused_for_good_is_reported_failed_when_it_cannot_be_dead_lettered(
    inventory_queue, engine
):
    sqs, arn, dlq = inventory_queue
    put_stock(engine, SKU_1=100)
    good = eventbridge_event(order_created(("SKU-1", 1)))
    context = LambdaContext(function_name="InventoryFunction")

    # A queue with no redrive policy: nowhere to send it
    bare = sqs.create_queue(QueueName="BareQueue")["QueueUrl"]
    bare_arn = sqs.get_queue_attributes(QueueUrl=bare, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    batch = sqs_event("not json", good, source_arn=bare_arn)
    assert failed_ids(reserve.handler(batch, context)) == [batch["Records"][0]["messageId"]]

    # No time left in the invocation: no call is started
    consumer._dead_letter_queues.clear()
    batch = sqs_event("not json", source_arn=arn)
    late = LambdaContext(function_name="InventoryFunction", timeout_s=0.1)
    assert failed_ids(reserve.handler(batch, late)) == [batch["Records"][0]["messageId"]]
    assert dead_letters(sqs, dlq) == []  # the DLQ is there: only the time stopped it

    # SQS refusing the send (its DLQ deleted): reported failed, to come back later
    sqs.delete_queue(QueueUrl=dlq)
    batch = sqs_event("not json", source_arn=arn)
    assert failed_ids(reserve.handler(batch, context)) == [batch["Records"][0]["messageId"]]

    assert levels(engine) == {"SKU-1": (100, 1)}  # the good one took effect once


def test_a_batch_that_fails_entirely_is_reported_record_by_record_not_raised(deps, engine):
    batch = sqs_event("not json", '{"also": "not an event"}')
    response = reserve.handler(batch, LambdaContext(function_name="InventoryFunction"))
    assert failed_ids(response) == [r["messageId"] for r in batch["Records"]]


def test_the_retry_delay_grows_with_the_receive_count_capped_and_jittered():
    low = [consumer.retry_delay_s(n, rng=lambda: 0.0) for n in range(1, 12)]
    high = [consumer.retry_delay_s(n, rng=lambda: 1.0) for n in range(1, 12)]
    assert high == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
    assert low == [h // 2 for h in high]
    assert consumer.retry_delay_s(0) >= 15  # a missing count is a first receive


def test_a_queue_url_is_derived_from_the_event_source_arn():
    assert (
        consumer.queue_url("arn:aws:sqs:eu-west-1:123456789012:InventoryQueue")
        == "https://sqs.eu-west-1.amazonaws.com/123456789012/InventoryQueue"
    )
    with pytest.raises(ValueError):
        consumer.queue_url("arn:aws:sns:eu-west-1:123456789012:topic")


# --- through a real queue: the event source mapping, stood in for ---------------------------


class Mapping:
    """What an SQS event source mapping does for one function: receive a batch (with
    its attributes), invoke, delete the records not reported failed. Failed records
    stay in flight for the visibility timeout the function set on them."""

    def __init__(self, sqs: Any, url: str, arn: str, handler: Any, function_id: str) -> None:
        self.sqs, self.url, self.arn, self.handler, self.function_id = sqs, url, arn, handler, function_id
        self.failed: list[str] = []
        self.in_flight: list[str] = []  # receipt handles of the failed records

    def poll(self) -> int:
        """One batch; how many records it held."""
        answer = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        response = self.handler(event, LambdaContext(function_name=self.function_id))
        failed = set(failed_ids(response))
        self.failed += sorted(failed)
        self.in_flight += [m["ReceiptHandle"] for m in messages if m["MessageId"] in failed]
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        record = sqs_record(
            message["Body"],
            message_id=message["MessageId"],
            receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
            source_arn=self.arn,
        )
        record["receiptHandle"] = message["ReceiptHandle"]
        return record


class RecordingSqs:
    """The function's SQS client (moto's), recording the visibility timeouts it set."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.timeouts: list[int] = []

    def change_message_visibility_batch(self, **request: Any) -> Any:
        self.timeouts += [e["VisibilityTimeout"] for e in request["Entries"]]
        return self.real.change_message_visibility_batch(**request)


@pytest.fixture
def notifications_queue(settings: Any, aws: Any) -> Iterator[tuple[Any, Ses, RecordingSqs, Mapping]]:
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="NotificationsDLQ")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="NotificationsQueue",
        Attributes={
            "VisibilityTimeout": "180",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "10"}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ses = Ses()
    recording = RecordingSqs(sqs)
    bootstrap.override(settings=settings, events_client=aws.events, ses_client=ses, sqs_client=recording)
    mapping = Mapping(sqs, url, arn, send_email.handler, "NotificationsFunction")
    mapping.dlq = dlq  # type: ignore[attr-defined]
    yield sqs, ses, recording, mapping
    bootstrap.override()


def time_passes(sqs: Any, mapping: Mapping) -> None:
    """The backoff of every record that failed is over (the test does not wait an hour)."""
    for receipt in mapping.in_flight:
        sqs.change_message_visibility(QueueUrl=mapping.url, ReceiptHandle=receipt, VisibilityTimeout=0)
    mapping.in_flight.clear()


def throttle(ses: Ses, calls: int) -> None:
    """The next ``calls`` SendEmail calls are throttled as SES answers it."""
    real = ses.send_email
    left = [calls]

    def send_email(**request: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "Maximum sending rate exceeded."}},
                "SendEmail",
            )
        return real(**request)

    ses.send_email = send_email  # type: ignore[method-assign]


def test_ses_throttling_for_a_while_delays_the_emails_which_all_arrive_once_it_recovers(
    notifications_queue, db
):
    sqs, ses, recording, mapping = notifications_queue
    # Given five OrderCreated in the queue, and SES throttling the first twelve sends
    events = [confirmation_event() for _ in range(5)]
    for event in events:
        sqs.send_message(QueueUrl=mapping.url, MessageBody=json.dumps(eventbridge_event(event)))
    throttle(ses, 12)

    # When the mapping polls while SES throttles, time passing between polls
    rounds = 0
    while mapping.poll() or mapping.in_flight:
        rounds += 1
        assert rounds < 10, "the throttled records never went through"
        # the failed records are not received again before their backoff is over
        assert mapping.poll() == 0
        time_passes(sqs, mapping)

    # Then every customer got one email, none reached the DLQ
    assert sorted(m.destinations["ToAddresses"][0] for m in ses.sent()) == ["ada@example.com"] * 5
    assert len({m.subject for m in ses.sent()}) == 5
    dlq = sqs.receive_message(QueueUrl=mapping.dlq, MaxNumberOfMessages=10)
    assert not dlq.get("Messages")
    # And each throttled record was pushed back, later each time it came back
    assert len(recording.timeouts) == 12
    assert all(15 <= t <= 30 for t in recording.timeouts[:5])  # first receive: 30 s, jittered
    assert max(recording.timeouts) > 30  # receives after the first wait longer
    rows = create_engine(db)
    with rows.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM notifications.emails WHERE status = 'SENT'")).scalar()
            == 5
        )
    rows.dispose()


def test_a_database_blink_after_ses_accepted_an_email_sends_it_once(notifications_queue, settings, aws, db):
    sqs, ses, recording, mapping = notifications_queue
    event = confirmation_event()
    sqs.send_message(QueueUrl=mapping.url, MessageBody=json.dumps(eventbridge_event(event)))

    with network.database_link(db) as link:
        # Given the function reaches the database through a link that is cut for 1.5 s
        # the moment SES accepts the email (longer than a plain transaction's 3 attempts)
        bootstrap.override(
            settings=settings.model_copy(update={"database_url": link.url(db)}),
            events_client=aws.events,
            ses_client=ses,
            sqs_client=recording,
        )
        real = ses.send_email

        def send_email(**request: Any) -> Any:
            answer = real(**request)
            link.cut_for(1.5)
            return answer

        ses.send_email = send_email  # type: ignore[method-assign]

        # When the mapping delivers it
        started = time.monotonic()
        assert mapping.poll() == 1

        # Then the record succeeded: the mark was retried past the blink, one email went out
        assert time.monotonic() - started >= 1.5
        assert link.cut_connections >= 2  # the open connection, then at least one refused
        assert mapping.failed == []
        assert len(ses.sent()) == 1
        engine = create_engine(db)
        with engine.connect() as conn:
            [(status, message_id)] = conn.execute(
                text("SELECT status, message_id FROM notifications.emails")
            ).all()
        engine.dispose()
        assert status == "SENT" and message_id == ses.sent()[0].id
        # And a redelivery sends nothing
        sqs.send_message(QueueUrl=mapping.url, MessageBody=json.dumps(eventbridge_event(event)))
        assert mapping.poll() == 1 and len(ses.sent()) == 1
        bootstrap.container().engine.dispose()
