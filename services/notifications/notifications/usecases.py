"""Use cases of the notifications service: plain functions of an event and ports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from common.events import InventoryReservationFailed, OrderCancelled, OrderCreated, ShipmentDispatched
from common.observability import logger
from notifications.domain.cancellation import render_cancellation
from notifications.domain.confirmation import ConfirmationEmail, render_confirmation
from notifications.domain.dispatch import render_dispatch
from notifications.domain.model import ClaimOutcome, EmailInFlight, EmailKind, RecipientUnknown
from notifications.domain.ports import EmailSender, UnitOfWork
from notifications.domain.rejection import render_rejection

CONSUMER = "notifications"
# Lambda's longest timeout: with no better knowledge, a claim this old is certainly
# an invocation's that died. The handler passes its own invocation's deadline instead.
DEFAULT_CLAIM_TTL = timedelta(minutes=15)

# Runs one database step; the handler retries it on a lost connection.
Transaction = Callable[[Callable[[], Any]], Any]


def _run_once(operation: Callable[[], Any]) -> Any:
    return operation()


@dataclass(frozen=True)
class ConfirmationResult:
    order_id: uuid.UUID
    outcome: ClaimOutcome
    message_id: str | None = None

    @property
    def sent(self) -> bool:
        return self.message_id is not None


def send_order_confirmation(
    event: OrderCreated,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
) -> ConfirmationResult:
    """Send the order's confirmation email exactly once, whatever the deliveries.

    1. Claim the email (and mark the event processed) in one transaction. The
       primary key on the order id and the email's kind lets one invocation in; concurrent twins wait for
       its commit and then see the claim. An email already SENT ends here quietly;
       one that another live invocation is sending raises ``EmailInFlight``, so
       this delivery is retried and finds it SENT (or the claim expired) later.
    2. Call the sender outside any transaction.
    3. Success: mark the email SENT with its message id. Failure: release the claim
       and the processed mark, and re-raise, so that Lambda's retry (or, in the end,
       the DLQ) sends it.

    A claim whose invocation died (timeout, crash) between 1 and 3 expires after
    ``claim_ttl`` (the handler passes its invocation's remaining time plus a margin)
    and is then re-taken by the next delivery. If that invocation died after SES
    accepted the email but before step 3, the email goes out twice: SES takes no
    idempotency key, so the crash window is at-least-once.

    ``transaction`` runs each database step (the handler retries them on a lost
    connection); each is complete and safe to run again.
    """

    def record_recipient() -> None:
        uow.recipients.record(event.order_id, event.customer_email)

    return _send_once(
        event.order_id,
        EmailKind.CONFIRMATION,
        event.metadata.event_id,
        lambda: render_confirmation(event),
        uow,
        sender,
        claim_ttl=claim_ttl,
        transaction=transaction,
        on_claim=record_recipient,
    )


def send_dispatch_notice(
    event: ShipmentDispatched,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
) -> ConfirmationResult:
    """Send the order's one dispatch email (carrier, tracking number), as the
    confirmation is sent. The address is the one the order's ``OrderCreated``
    recorded; before that is handled, ``RecipientUnknown`` is raised (nothing is
    claimed or marked) and the event is retried."""
    return _send_to_recorded_recipient(
        event.order_id,
        EmailKind.DISPATCH,
        event.metadata.event_id,
        lambda to: render_dispatch(event, to),
        uow,
        sender,
        claim_ttl=claim_ttl,
        transaction=transaction,
    )


def send_rejection_notice(
    event: InventoryReservationFailed,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
) -> ConfirmationResult:
    """Send the order's one rejection email (what was short), as the dispatch email is sent."""
    return _send_to_recorded_recipient(
        event.order_id,
        EmailKind.REJECTION,
        event.metadata.event_id,
        lambda to: render_rejection(event, to),
        uow,
        sender,
        claim_ttl=claim_ttl,
        transaction=transaction,
    )


def send_cancellation_notice(
    event: OrderCancelled,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
) -> ConfirmationResult:
    """Send the order's one cancellation email, as the dispatch email is sent."""
    return _send_to_recorded_recipient(
        event.order_id,
        EmailKind.CANCELLATION,
        event.metadata.event_id,
        lambda to: render_cancellation(event, to),
        uow,
        sender,
        claim_ttl=claim_ttl,
        transaction=transaction,
    )


def _send_to_recorded_recipient(
    order_id: uuid.UUID,
    kind: EmailKind,
    event_id: uuid.UUID,
    render: Callable[[str], ConfirmationEmail],
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta,
    transaction: Transaction,
) -> ConfirmationResult:
    """An email to the address the order's ``OrderCreated`` recorded; before that is
    handled, ``RecipientUnknown`` (nothing claimed or marked) so the event is retried."""
    recipient: list[str] = []

    def find_recipient() -> None:
        found = uow.recipients.get(order_id)
        if found is None:
            raise RecipientUnknown(order_id)
        recipient.append(found)

    return _send_once(
        order_id,
        kind,
        event_id,
        lambda: render(recipient[0]),
        uow,
        sender,
        claim_ttl=claim_ttl,
        transaction=transaction,
        on_claim=find_recipient,
    )


def _send_once(
    order_id: uuid.UUID,
    kind: EmailKind,
    event_id: uuid.UUID,
    render: Callable[[], ConfirmationEmail],
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta,
    transaction: Transaction,
    on_claim: Callable[[], None],
) -> ConfirmationResult:
    """Claim, send outside any transaction, mark sent (or release and re-raise)."""
    token = uuid.uuid4()
    extra = {"order_id": str(order_id), "kind": kind.value}

    def claim() -> ClaimOutcome:
        with uow:
            on_claim()
            outcome = uow.emails.claim(order_id, event_id, token, claim_ttl, kind)
            uow.commit()
        return outcome

    outcome: ClaimOutcome = transaction(claim)
    if outcome is ClaimOutcome.ALREADY_SENT:
        logger.info("email already sent", extra=extra)
        return ConfirmationResult(order_id, outcome)
    if outcome is ClaimOutcome.IN_FLIGHT:
        raise EmailInFlight(order_id)
    if outcome is ClaimOutcome.RETAKEN:
        logger.warning(
            "re-taking an expired claim: the invocation that held it died before sending", extra=extra
        )

    email = render()
    try:
        message_id = sender.send(email)
    except Exception:
        logger.exception("email not sent; claim released for a retry", extra=extra)
        transaction(lambda: _release(uow, order_id, kind, token))
        raise

    def mark_sent() -> None:
        with uow:
            if not uow.emails.mark_sent(order_id, token, message_id, kind):
                # Only possible if this invocation outlived its own claim's expiry.
                logger.error(
                    "the claim was re-taken while this invocation sent the email",
                    extra={**extra, "message_id": message_id},
                )
            # The event is handled once its email is sent, not when claimed: a failed send
            # leaves no mark to take back (the role may not delete marks).
            uow.processed.mark(CONSUMER, event_id)
            uow.commit()

    transaction(mark_sent)
    logger.info("email sent", extra={**extra, "message_id": message_id})
    return ConfirmationResult(order_id, outcome, message_id)


def _release(uow: UnitOfWork, order_id: uuid.UUID, kind: EmailKind, token: uuid.UUID) -> None:
    with uow:
        uow.emails.release(order_id, token, kind)
        uow.commit()
