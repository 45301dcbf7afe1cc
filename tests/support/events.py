"""EventBridge events as a rule delivers them, and the SQS batches a consumer receives them in."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from common.events import DomainEvent

ACCOUNT = "123456789012"
REGION = "us-east-1"


def eventbridge_event(
    detail_model: DomainEvent, *, event_id: str | None = None, time: datetime | None = None
) -> dict[str, Any]:
    """The envelope EventBridge hands a target, with ``detail_model`` as its detail.

    ``id`` is EventBridge's own id of the delivery (a fresh one unless given);
    ``detail.metadata.eventId`` is ours, and what consumers are idempotent on.
    """
    at = (time or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_model.DETAIL_TYPE,
        "source": detail_model.SOURCE,
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": detail_model.model_dump(mode="json", by_alias=True),
    }


def queue_arn(function_id: str) -> str:
    """The ARN of a consumer's queue (``InventoryFunction`` reads ``InventoryQueue``)."""
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{function_id.removesuffix('Function')}Queue"


def sqs_record(
    event: dict[str, Any] | str,
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    source_arn: str | None = None,
) -> dict[str, Any]:
    """One record of the batch an SQS event source mapping hands a function, whose
    body is ``event`` (an EventBridge event, or any text) as the rule put it there."""
    body = event if isinstance(event, str) else json.dumps(event)
    message_id = message_id or str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000000",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - what SQS sends
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn or queue_arn("ConsumerFunction"),
        "awsRegion": REGION,
    }


def sqs_event(*events: dict[str, Any] | str, source_arn: str | None = None) -> dict[str, Any]:
    """The SQS event of a batch of EventBridge events (or raw bodies), in order."""
    return {"Records": [sqs_record(e, source_arn=source_arn) for e in events]}


def failed_ids(response: dict[str, Any]) -> list[str]:
    """The message ids a consumer reported in ``batchItemFailures``."""
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def one_record(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as a batch of one (what a test of one delivery hands a consumer)."""
    return sqs_event(event)


def deliver(consumer: Any, event: dict[str, Any], deps: Any = None, context: Any = None) -> Any:
    """Hand one EventBridge event to ``consumer`` (a ``common.consumer.Consumer``) as
    one SQS record; its ``Outcome``, or what failed it raised."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from common import bootstrap

    return consumer.process_record(SQSRecord(sqs_record(event)), deps or bootstrap.container(), context)


def handled(consumer: Any, event: dict[str, Any], deps: Any = None) -> str:
    """What a consumer whose outcome logs ``handled`` (inventory, shipping) did with ``event``."""
    return str(deliver(consumer, event, deps).log["handled"])
