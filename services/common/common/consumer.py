"""EventBridge consumers: parse the envelope with Powertools Parser models.

``parse_event`` validates the EventBridge envelope and then the ``detail`` against
the event types the function accepts, sets the log's correlation id from the
event's metadata, and raises ``InvalidEvent`` (after logging the event's id and
what is wrong) for anything malformed or unexpected: the invocation fails, the
rule's retry policy runs out, and the event lands in the consumer's DLQ, neither
lost nor retried forever by our own code.

Delivery is at least once and in any order: each use case records
``metadata.eventId`` in ``eventing.processed_events`` (``uow.processed.mark``) in
the same transaction as its effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from common.events import DomainEvent
from common.observability import logger

E = TypeVar("E", bound=DomainEvent)


class InvalidEvent(Exception):
    """The event is malformed, or not one this function consumes."""


@dataclass(frozen=True)
class ReceivedEvent(Generic[E]):
    id: str  # EventBridge's own id of this delivery's event
    source: str
    detail_type: str
    detail: E


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_event(event: Any, accepts: tuple[type[E], ...]) -> ReceivedEvent[E]:
    """The event's validated detail, or ``InvalidEvent`` (logged with the event's id)."""
    raw_id = event.get("id") if isinstance(event, dict) else None
    try:
        envelope = EventBridgeModel.model_validate(event)
    except ValidationError as exc:
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
