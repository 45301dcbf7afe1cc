"""EventBridge events as a rule delivers them to a Lambda function."""

from __future__ import annotations

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
