"""NotificationsFunction: the order's emails (its SQS queue, which the EventBridge
rule feeds): the confirmation on ``OrderCreated``, the rejection (what was short) on
``InventoryReservationFailed``, the dispatch notice (carrier, tracking number) on
``ShipmentDispatched``, the cancellation notice on ``OrderCancelled``.

An adapter only: ``handle`` calls one use case per event; ``common.consumer`` does
the rest. An email whose order's ``OrderCreated`` has not arrived yet is kept pending
and sent with the confirmation (an early event is not a failure). A failed send, or an
email another invocation is still sending, fails the record: it is received again
after a backoff that grows with each receive.
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
from notifications.domain.model import ClaimOutcome, EmailInFlight, EmailKind
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

# Each event this function takes: the use case that sends its email.
SENDS: dict[type[Any], Callable[..., ConfirmationResult]] = {
    OrderCreated: send_order_confirmation,
    InventoryReservationFailed: send_rejection_notice,
    ShipmentDispatched: send_dispatch_notice,
    OrderCancelled: send_cancellation_notice,
}
METRICS = {
    EmailKind.CONFIRMATION: "ConfirmationEmailSent",
    EmailKind.REJECTION: "RejectionEmailSent",
    EmailKind.DISPATCH: "DispatchEmailSent",
    EmailKind.CANCELLATION: "CancellationEmailSent",
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
    """Send the email one delivered event calls for (at most once per order and kind);
    for an ``OrderCreated``, the order's emails kept pending too."""
    deps = delivery.deps
    deps.settings.require("sender_email")
    assert deps.settings.sender_email is not None
    detail = delivery.detail
    try:
        result = SENDS[type(detail)](
            detail,
            NotificationsUnitOfWork(deps.engine),
            SesEmailSender(deps.ses_client, deps.settings.sender_email),
            claim_ttl=claim_ttl(delivery.context),
            transaction=delivery.transaction,
            # SES accepted the email: recording it is worth the invocation's time.
            mark=delivery.transaction_while_time_left,
        )
    except EmailInFlight as exc:
        logger.warning(
            "another invocation is sending this email; this delivery will be retried",
            extra={"order_id": str(exc.order_id)},
        )
        raise
    for pending in result.pending:
        if pending.sent:
            metrics.add_metric(name=METRICS[pending.kind], unit="Count", value=1)
    metric = METRICS[result.kind] if result.sent else None
    if result.outcome is ClaimOutcome.PENDING:
        metric = "EmailKeptPending"
    return Outcome(
        metric,
        log={
            "order_id": str(result.order_id),
            "kind": result.kind.value,
            "outcome": result.outcome.value,
            "message_id": result.message_id,
            "pending_sent": [p.kind.value for p in result.pending if p.sent],
        },
    )


consumer = Consumer(ACCEPTS, handle)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.process(event, context)
