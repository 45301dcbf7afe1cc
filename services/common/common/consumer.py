"""The one runner every consumer is built on: an SQS batch of EventBridge events.

Each consumer's queue is the target of its EventBridge rule, and an event source
mapping hands the function a batch of records whose ``body`` is the EventBridge
event as JSON text. ``Consumer.process`` runs the batch with Powertools' batch
utility (``BatchProcessor`` + ``process_partial_response``) and, per record:

1. parses the EventBridge envelope from the body, then its ``detail`` against the
   event types the function accepts (Powertools Parser models), and sets the log's
   correlation id from the event's metadata;
2. calls the service's ``handle(delivery)``, which runs its use case through
   ``delivery.run`` (a unit of work, retried on a lost connection) and says what
   happened (an ``Outcome``);
3. logs and counts the outcome's metric; once the batch is done, publishes the outbox
   rows its records committed (``publish_committed``: one PutEvents call per ten).

A record that fails is reported in ``batchItemFailures``; the others are deleted by
the event source mapping and took effect once. What a failure is decides what
happens next (``common.failures``):

* permanent (a malformed event, one this function does not consume, or one its use
  case refuses for good): logged once with why and sent at once to the DLQ its
  queue's redrive policy names, the reason in the message's attributes (``dead_letter``),
  then reported done. No retry could cure it, so it does not wait out the retry
  horizon. Only when that send cannot be made (no redrive policy, no time left, SQS
  failing) is it reported failed, and the redrive policy takes it there after
  ``maxReceiveCount`` receives;
* transient (anything else: the database, SES, a timeout): reported failed, and
  its next receive is pushed back with ``ChangeMessageVisibility``, a timeout that
  grows with ``ApproximateReceiveCount`` (``retry_delay_s``), so an outage is ridden
  out for hours with no hot loop. That call is bounded by the invocation's time
  left, and its own failure never fails the batch (the message then comes back
  after the queue's visibility timeout).

Delivery is at least once and in any order: each use case records
``metadata.eventId`` in its processed-events inbox in the same transaction as its
effect, so a record delivered again changes nothing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from common import bootstrap, failures
from common.db import retry_on_disconnect
from common.events import DomainEvent
from common.observability import logger, metrics

E = TypeVar("E", bound=DomainEvent)
T = TypeVar("T")
U = TypeVar("U")

# A failed record's next receive: min(cap, base * 2^(receives - 1)), jittered to 50-100 %.
# With the template's maxReceiveCount the delays add up to the retry horizon
# (docs/failures.md): 30 s, 1, 2, 4, 8, 16, 32 min, then an hour each.
RETRY_BASE_S = 30
RETRY_CAP_S = 3600
# ChangeMessageVisibilityBatch starts only with this much of the invocation left.
VISIBILITY_CALL_MARGIN_S = 0.5
# What a step retried for as long as the invocation has time leaves for its last try.
PERSIST_MARGIN_S = 2.0
# A dead letter's reason, as message attributes (orderflow dlq show decodes them).
REASON_LIMIT = 1000
_LOG_KEYS = ("event_id", "detail_type", "eventbridge_id", "message_id", "receive_count")


class InvalidEvent(failures.PermanentFailure):
    """The event is malformed, or not one this function consumes (permanent)."""


@dataclass(frozen=True)
class ReceivedEvent(Generic[E]):
    id: str  # EventBridge's own id of this delivery's event
    source: str
    detail_type: str
    detail: E


@dataclass(frozen=True)
class Outcome:
    """What ``handle`` did with one event: the metric to count (none for a quiet
    duplicate), outbox rows to publish now, and fields for the log line."""

    metric: str | None
    outbox_ids: Sequence[int] = ()
    log: dict[str, Any] = field(default_factory=dict)
    message: str = "event handled"
    count: int = 1  # the metric's value


@dataclass
class Delivery(Generic[E]):
    """One record being handled: its event, the function's parts and time."""

    event: ReceivedEvent[E]
    deps: bootstrap.Container
    context: Any
    receive_count: int = 1

    @property
    def detail(self) -> E:
        return self.event.detail

    def transaction(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` (one whole transaction), again on a lost connection."""
        return retry_on_disconnect(operation, engine=self.deps.engine)

    def transaction_while_time_left(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` (one whole transaction), again on a lost connection for as
        long as the invocation has time (minus ``PERSIST_MARGIN_S`` for the last try)."""
        return retry_on_disconnect(
            operation, engine=self.deps.engine, time_left=lambda: self.time_left() - PERSIST_MARGIN_S
        )

    def run(self, use_case: Callable[[U], T], unit_of_work: Callable[[Any], U]) -> T:
        """Run ``use_case`` in a fresh unit of work, retried on a lost connection."""
        engine = self.deps.engine
        return retry_on_disconnect(lambda: use_case(unit_of_work(engine)), engine=engine)

    def time_left(self) -> float:
        """Seconds the invocation has left (a day when there is no Lambda context)."""
        return time_left(self.context)


def time_left(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else 86400.0


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_event(event: Any, accepts: tuple[type[E], ...]) -> ReceivedEvent[E]:
    """The EventBridge event's validated detail (``event``: a dict, or its JSON text),
    or ``InvalidEvent`` (logged with the event's id and what is wrong)."""
    try:
        if isinstance(event, str | bytes):
            envelope = EventBridgeModel.model_validate_json(event)
        else:
            envelope = EventBridgeModel.model_validate(event)
    except ValidationError as exc:
        raw_id = _raw_id(event)
        logger.error("malformed EventBridge event", extra={"event_id": raw_id, "errors": _errors(exc)})
        raise InvalidEvent(f"malformed EventBridge event {raw_id}") from exc

    by_type = {e.DETAIL_TYPE: e for e in accepts}
    model = by_type.get(envelope.detail_type)
    if model is None or envelope.source != model.SOURCE:
        logger.error(
            "unexpected event for this function",
            extra={
                "event_id": envelope.id,
                "source": envelope.source,
                "detail_type": envelope.detail_type,
                "accepts": sorted(by_type),
            },
        )
        raise InvalidEvent(f"unexpected {envelope.source}/{envelope.detail_type} event {envelope.id}")

    metadata = envelope.detail.get("metadata") if isinstance(envelope.detail, dict) else None
    if isinstance(metadata, dict) and isinstance(metadata.get("correlationId"), str):
        logger.set_correlation_id(metadata["correlationId"])
    try:
        detail = model.model_validate(envelope.detail)
    except ValidationError as exc:
        logger.error(
            "invalid event detail",
            extra={
                "event_id": envelope.id,
                "detail_type": envelope.detail_type,
                "metadata_event_id": metadata.get("eventId") if isinstance(metadata, dict) else None,
                "errors": _errors(exc),
            },
        )
        raise InvalidEvent(f"invalid {envelope.detail_type} detail in event {envelope.id}") from exc

    logger.append_keys(
        event_id=str(detail.metadata.event_id), detail_type=envelope.detail_type, eventbridge_id=envelope.id
    )
    return ReceivedEvent(
        id=envelope.id, source=envelope.source, detail_type=envelope.detail_type, detail=detail
    )  # type: ignore[arg-type]


def _raw_id(event: Any) -> Any:
    """The ``id`` of an event that did not validate, if it has one (for the log)."""
    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        except ValueError:
            return None
    return event.get("id") if isinstance(event, dict) else None


def retry_delay_s(receive_count: int, rng: Callable[[], float] = random.random) -> int:
    """Seconds before a failed record is received again (its ``ApproximateReceiveCount``
    so far): exponential, capped, jittered so a failed batch does not return as one."""
    delay = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** min(max(receive_count, 1) - 1, 20))
    return max(1, int(delay * (0.5 + rng() / 2)))


def queue_url(event_source_arn: str) -> str:
    """The queue URL of ``arn:aws:sqs:<region>:<account>:<name>`` (what SQS calls take)."""
    parts = event_source_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {event_source_arn!r}")
    _, partition, _, region, account, name = parts
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


class Consumer:
    """A consumer function: the event types it accepts and its ``handle``.

    ``process(event, context)`` is the whole Lambda handler body; the service's
    module wraps it in the Powertools decorators (logger, metrics, tracer).
    """

    def __init__(
        self, accepts: tuple[type[DomainEvent], ...], handle: Callable[[Delivery[Any]], Outcome]
    ) -> None:
        self.accepts = accepts
        self.handle = handle
        # The whole batch is reported record by record, even when every record failed:
        # raising instead would fail the invocation and skip the backoff below.
        self._processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def process(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        deps = bootstrap.container()
        failed: list[tuple[SQSRecord, int]] = []
        committed: list[int] = []

        def record_handler(record: SQSRecord) -> None:
            try:
                committed.extend(self.process_record(record, deps, context, publish=False).outbox_ids)
            except Exception as exc:
                if failures.is_transient(exc):
                    failed.append((record, _receive_count(record)))
                elif dead_letter(deps, record, exc, context):
                    return  # done here: the event waits in the DLQ for an operator
                raise

        response = process_partial_response(
            event=event, record_handler=record_handler, processor=self._processor, context=context
        )
        logger.remove_keys(list(_LOG_KEYS))
        logger.set_correlation_id(None)
        # Every record's follow-up events, committed, go out together: one PutEvents call
        # per ten, not one per record (the relay publishes whatever this does not).
        deps.publish_committed(committed, context)
        if failed:
            _back_off(deps, failed, context)
        return dict(response)

    def process_record(
        self, record: SQSRecord, deps: bootstrap.Container, context: Any, *, publish: bool = True
    ) -> Outcome:
        """Handle one record; raises what failed it (``InvalidEvent`` when permanent).
        ``publish``: publish its committed outbox rows at once (``process`` publishes
        the whole batch's together instead)."""
        receive_count = _receive_count(record)
        logger.remove_keys(list(_LOG_KEYS))
        logger.set_correlation_id(None)
        logger.append_keys(message_id=record.message_id, receive_count=receive_count)
        received: ReceivedEvent[Any] | None = None
        try:
            received = parse_event(record.body, self.accepts)
            outcome = self.handle(Delivery(received, deps, context, receive_count))
        except InvalidEvent:
            # parse_event logged why; ``process`` sends it to the DLQ.
            metrics.add_metric(name="InvalidEvent", unit="Count", value=1)
            raise
        except failures.PermanentFailure as exc:
            logger.error(
                "event refused for good",
                extra={"reason": str(exc), "eventbridge_id": received.id if received else None},
            )
            metrics.add_metric(name="InvalidEvent", unit="Count", value=1)
            raise
        except Exception as exc:
            # Transient (common.failures): received again after a backoff.
            logger.warning(
                "event not handled; it will be received again", extra={"error": failures.error_code(exc)}
            )
            raise
        if publish:
            deps.publish_committed(outcome.outbox_ids, context)
        if outcome.metric:
            metrics.add_metric(name=outcome.metric, unit="Count", value=outcome.count)
        logger.info(outcome.message, extra=outcome.log)
        return outcome


def _receive_count(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except (TypeError, ValueError):
        return 1


def _back_off(deps: bootstrap.Container, failed: list[tuple[SQSRecord, int]], context: Any) -> None:
    """Push back the next receive of each transiently failed record; never raises."""
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for record, receive_count in failed:
        try:
            url = queue_url(record.event_source_arn or "")
        except ValueError:
            continue  # not from a queue (a hand-made event): nothing to push back
        by_queue.setdefault(url, []).append(
            {
                "Id": str(len(by_queue.get(url, []))),
                "ReceiptHandle": record.receipt_handle,
                "VisibilityTimeout": retry_delay_s(receive_count),
            }
        )
    bound = bootstrap.call_bound_s("sqs") + VISIBILITY_CALL_MARGIN_S
    for url, entries in by_queue.items():
        for start in range(0, len(entries), 10):  # the API's limit per call
            if time_left(context) < bound:
                logger.warning("no time left to back off failed records", extra={"records": len(entries)})
                return
            chunk = entries[start : start + 10]
            try:
                answer = deps.sqs_client.change_message_visibility_batch(QueueUrl=url, Entries=chunk)
            except Exception as exc:
                logger.warning(
                    "could not back off failed records; they return after the queue's visibility timeout",
                    extra={"error": failures.error_code(exc), "records": len(chunk)},
                )
                continue
            if answer.get("Failed"):
                logger.warning(
                    "some failed records were not backed off",
                    extra={"codes": sorted({f.get("Code", "") for f in answer["Failed"]})},
                )


# Each source queue's DLQ URL (None: it has no redrive policy), from its attributes: one
# lookup per execution environment and queue, made only when a record is refused for good.
_dead_letter_queues: dict[str, str | None] = {}


def dead_letter(deps: bootstrap.Container, record: SQSRecord, exc: Exception, context: Any) -> bool:
    """Send a record refused for good to the DLQ of the queue it came from, with why
    (message attributes ``REFUSED_BY``, ``ERROR_CODE``, ``ERROR_MESSAGE``,
    ``RECEIVE_COUNT``); True once SQS took it. False, with a warning, when it cannot:
    the record is then reported failed and the queue's redrive policy takes it there.
    Each call starts only with the time it may take left in the invocation."""
    try:
        source = queue_url(record.event_source_arn or "")
    except ValueError:
        return False  # not from a queue (a hand-made event): nowhere to send it
    bound = bootstrap.call_bound_s("sqs") + VISIBILITY_CALL_MARGIN_S
    sqs = deps.sqs_client
    try:
        if source not in _dead_letter_queues:
            if time_left(context) < bound:
                raise TimeoutError("no time left to read the queue's redrive policy")
            attributes = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["RedrivePolicy"])
            policy = attributes.get("Attributes", {}).get("RedrivePolicy")
            target = json.loads(policy).get("deadLetterTargetArn") if policy else None
            _dead_letter_queues[source] = queue_url(target) if target else None
        dlq = _dead_letter_queues[source]
        if dlq is None:
            logger.warning("its queue has no redrive policy; the record is reported failed")
            return False
        if time_left(context) < bound:
            raise TimeoutError("no time left to send it to the DLQ")
        reason = str(exc) or type(exc).__name__
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=record.body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in (
                    ("REFUSED_BY", str(getattr(context, "function_name", None) or "unknown")),
                    ("ERROR_CODE", type(exc).__name__),
                    ("ERROR_MESSAGE", reason[:REASON_LIMIT]),
                    ("RECEIVE_COUNT", str(_receive_count(record))),
                )
            },
        )
    except Exception as error:
        logger.warning(
            "could not send the refused event to its DLQ; it will be received again",
            extra={"error": failures.error_code(error)},
        )
        return False
    logger.info("refused event sent to its DLQ", extra={"reason": type(exc).__name__})
    metrics.add_metric(name="DeadLettered", unit="Count", value=1)
    return True
