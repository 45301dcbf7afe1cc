"""NotificationsFunction: the order's emails (its SQS queue, which the EventBridge
rule feeds): the confirmation on ``OrderCreated``, the rejection (what was short) on
``InventoryReservationFailed``, the dispatch notice (carrier, tracking number) on
``ShipmentDispatched``, the cancellation notice on ``OrderCancelled``.

An adapter only: ``handle`` calls one use case per event; ``common.consumer`` does
the rest. A failed send, or an email another invocation is still sending, fails the
record: it is received again after a backoff that grows with each receive.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import snapstart
from common.consumer import Consumer, Delivery, Outcome
from common.events import InventoryReservationFailed, OrderCancelled, OrderCreated, ShipmentDispatched
from common.observability import logger, metrics, tracer
from notifications.adapters.repository import NotificationsUnitOfWork
from notifications.adapters.ses import SesEmailSender
from notifications.domain.model import EmailInFlight, RecipientUnknown
from notifications.usecases import (
    DEFAULT_CLAIM_TTL,
    ConfirmationResult,
    send_cancellation_notice,
    send_dispatch_notice,
    send_order_confirmation,
    send_rejection_notice,
)

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("sesv2", "sqs"))

# Each event this function takes: the use case that sends its email, and its metric.
SENDS: dict[type[Any], tuple[Callable[..., ConfirmationResult], str]] = {
    OrderCreated: (send_order_confirmation, "ConfirmationEmailSent"),
    InventoryReservationFailed: (send_rejection_notice, "RejectionEmailSent"),
    ShipmentDispatched: (send_dispatch_notice, "DispatchEmailSent"),
    OrderCancelled: (send_cancellation_notice, "CancellationEmailSent"),
}
ACCEPTS = tuple(SENDS)

# A claim outlives its invocation by this much before another may re-take it.
CLAIM_MARGIN = timedelta(seconds=30)


def claim_ttl(context: Any) -> timedelta:
    """How long this invocation's claim holds: past it, Lambda has certainly ended it."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return DEFAULT_CLAIM_TTL
    return timedelta(milliseconds=remaining()) + CLAIM_MARGIN


def handle(delivery: Delivery[Any]) -> Outcome:
    """Send the email one delivered event calls for (at most once per order and kind)."""
    deps = delivery.deps
    deps.settings.require("sender_email")
    assert deps.settings.sender_email is not None
    detail = delivery.detail
    send, metric = SENDS[type(detail)]
    try:
        result = send(
            detail,
            NotificationsUnitOfWork(deps.engine),
            SesEmailSender(deps.ses_client, deps.settings.sender_email),
            claim_ttl=claim_ttl(delivery.context),
            transaction=delivery.transaction,
        )
    except (EmailInFlight, RecipientUnknown) as exc:
        logger.warning(
            "email not sendable yet; this delivery will be retried",
            extra={"order_id": str(exc.order_id), "reason": type(exc).__name__},
        )
        raise
    return Outcome(
        metric if result.sent else None,
        log={
            "order_id": str(result.order_id),
            "outcome": result.outcome.value,
            "message_id": result.message_id,
        },
    )


consumer = Consumer(ACCEPTS, handle)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.process(event, context)
