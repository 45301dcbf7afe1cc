"""Use cases of the notifications service: plain functions of an event and ports."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from common.events import InventoryReservationFailed, OrderCancelled, OrderCreated, ShipmentDispatched
from common.observability import logger
from notifications.domain.cancellation import render_cancellation
from notifications.domain.confirmation import ConfirmationEmail, render_confirmation
from notifications.domain.dispatch import render_dispatch
from notifications.domain.model import ClaimOutcome, EmailInFlight, EmailKind
from notifications.domain.ports import EmailSender, UnitOfWork
from notifications.domain.rejection import render_rejection

CONSUMER = "notifications"
# Lambda's longest timeout: with no better knowledge, a claim this old is certainly
# an invocation's that died. The handler passes its own invocation's deadline instead.
DEFAULT_CLAIM_TTL = timedelta(minutes=15)

# Runs one database step; the handler retries it on a lost connection.
Transaction = Callable[[Callable[[], Any]], Any]

# The events whose email goes to the address the order's OrderCreated recorded: the
# kind, the event's model, and how its email is rendered (kept pending as their JSON).
LATER_EMAILS: dict[EmailKind, tuple[type[Any], Callable[[Any, str], ConfirmationEmail]]] = {
    EmailKind.REJECTION: (InventoryReservationFailed, render_rejection),
    EmailKind.DISPATCH: (ShipmentDispatched, render_dispatch),
    EmailKind.CANCELLATION: (OrderCancelled, render_cancellation),
}


def _run_once(operation: Callable[[], Any]) -> Any:
    return operation()


@dataclass(frozen=True)
class ConfirmationResult:
    order_id: uuid.UUID
    outcome: ClaimOutcome
    message_id: str | None = None
    kind: EmailKind = EmailKind.CONFIRMATION
    # Emails kept pending until this OrderCreated, sent (or found sent) with it.
    pending: tuple[ConfirmationResult, ...] = ()

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
    mark: Transaction | None = None,
) -> ConfirmationResult:
    """Send the order's confirmation email exactly once, whatever the deliveries; then
    any of the order's emails kept pending until its recipient was known.

    1. Claim the email in one transaction. The
       primary key on the order id and the email's kind lets one invocation in; concurrent twins wait for
       its commit and then see the claim. An email already SENT ends here quietly;
       one that another live invocation is sending raises ``EmailInFlight``, so
       this delivery is retried and finds it SENT (or the claim expired) later.
    2. Call the sender outside any transaction: one call, never repeated here.
    3. Success: mark the email SENT with its message id, through ``mark`` (the handler
       retries it for as long as the invocation has time: SES accepted the email, so
       it must not be sent again because the database blinked), and mark the event
       processed in that same transaction. Failure: release the claim and re-raise, so
       that the delivery's retry sends it (no processed mark was written to take back).

    A claim whose invocation died (timeout, crash) between 1 and 3 expires after
    ``claim_ttl`` (the handler passes its invocation's remaining time plus a margin)
    and is then re-taken by the next delivery. If that invocation died after SES
    accepted the email but before step 3, the email goes out twice: SES takes no
    idempotency key, so the crash window is at-least-once.

    ``transaction`` runs each database step (the handler retries them on a lost
    connection); each is complete and safe to run again.
    """

    def record_recipient() -> bool:
        uow.recipients.lock(event.order_id)
        uow.recipients.record(event.order_id, event.customer_email)
        return True

    confirmation = _send_once(
        event.order_id,
        EmailKind.CONFIRMATION,
        event.metadata.event_id,
        lambda: render_confirmation(event),
        uow,
        sender,
        claim_ttl=claim_ttl,
        transaction=transaction,
        mark=mark or transaction,
        on_claim=record_recipient,
    )
    pending = send_pending(
        event.order_id, uow, sender, claim_ttl=claim_ttl, transaction=transaction, mark=mark
    )
    return replace(confirmation, pending=tuple(pending))


def send_pending(
    order_id: uuid.UUID,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
    mark: Transaction | None = None,
) -> list[ConfirmationResult]:
    """Send the order's emails kept pending (its recipient is known now), each at most
    once per kind as any email; a pending row is dropped once its email is SENT."""

    def pending() -> tuple[str | None, list[tuple[EmailKind, uuid.UUID, str]]]:
        with uow:
            return uow.recipients.get(order_id), uow.pending.of_order(order_id)

    recipient, kept = transaction(pending)
    if not kept:
        return []
    assert recipient is not None  # kept only while unknown; known before this runs
    results = []
    for kind, event_id, event_json in kept:
        model, render = LATER_EMAILS[kind]
        email = functools.partial(render, model.model_validate_json(event_json), recipient)
        result = _send_once(
            order_id,
            kind,
            event_id,
            email,
            uow,
            sender,
            claim_ttl=claim_ttl,
            transaction=transaction,
            mark=mark or transaction,
            on_claim=lambda: True,
        )

        def drop(kind: EmailKind = kind) -> None:
            with uow:
                uow.pending.drop(order_id, kind)
                uow.commit()

        transaction(drop)
        results.append(result)
    return results


def send_dispatch_notice(
    event: ShipmentDispatched,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
    mark: Transaction | None = None,
) -> ConfirmationResult:
    """Send the order's one dispatch email (carrier, tracking number), as the
    confirmation is sent. The address is the one the order's ``OrderCreated``
    recorded; before that is handled, the email is kept pending (``PENDING``) and
    goes out with the confirmation."""
    return _send_to_recorded_recipient(
        event, EmailKind.DISPATCH, uow, sender, claim_ttl=claim_ttl, transaction=transaction, mark=mark
    )


def send_rejection_notice(
    event: InventoryReservationFailed,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
    mark: Transaction | None = None,
) -> ConfirmationResult:
    """Send the order's one rejection email (what was short), as the dispatch email is sent."""
    return _send_to_recorded_recipient(
        event, EmailKind.REJECTION, uow, sender, claim_ttl=claim_ttl, transaction=transaction, mark=mark
    )


def send_cancellation_notice(
    event: OrderCancelled,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    transaction: Transaction = _run_once,
    mark: Transaction | None = None,
) -> ConfirmationResult:
    """Send the order's one cancellation email, as the dispatch email is sent."""
    return _send_to_recorded_recipient(
        event, EmailKind.CANCELLATION, uow, sender, claim_ttl=claim_ttl, transaction=transaction, mark=mark
    )


def _send_to_recorded_recipient(
    event: InventoryReservationFailed | ShipmentDispatched | OrderCancelled,
    kind: EmailKind,
    uow: UnitOfWork,
    sender: EmailSender,
    *,
    claim_ttl: timedelta,
    transaction: Transaction,
    mark: Transaction | None,
) -> ConfirmationResult:
    """An email to the address the order's ``OrderCreated`` recorded; before that is
    handled, the email is kept pending (and the event marked processed) in one
    transaction, under the order's lock, so the OrderCreated that records the address
    either comes first (and this sends) or finds it pending (and sends it)."""
    _, render = LATER_EMAILS[kind]
    recipient: list[str] = []

    def find_recipient() -> bool:
        uow.recipients.lock(event.order_id)
        found = uow.recipients.get(event.order_id)
        if found is None:
            uow.pending.keep(
                event.order_id, kind, event.metadata.event_id, event.model_dump_json(by_alias=True)
            )
            return False
        recipient.append(found)
        return True

    return _send_once(
        event.order_id,
        kind,
        event.metadata.event_id,
        lambda: render(event, recipient[0]),
        uow,
        sender,
        claim_ttl=claim_ttl,
        transaction=transaction,
        mark=mark or transaction,
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
    mark: Transaction,
    on_claim: Callable[[], bool],
) -> ConfirmationResult:
    """Claim, send outside any transaction, mark sent (or release and re-raise).

    ``on_claim`` runs first in the claim's transaction; False: the email is kept
    pending, and the event's processed mark is committed with it."""
    token = uuid.uuid4()
    extra = {"order_id": str(order_id), "kind": kind.value}

    def claim() -> ClaimOutcome:
        with uow:
            if on_claim():
                outcome = uow.emails.claim(order_id, event_id, token, claim_ttl, kind)
            else:
                # Kept pending: that is this event's whole effect, so it is handled now. A sent
                # email marks its event in mark_sent instead (a failed send leaves no mark).
                uow.processed.mark(CONSUMER, event_id)
                outcome = ClaimOutcome.PENDING
            uow.commit()
        return outcome

    outcome: ClaimOutcome = transaction(claim)
    if outcome is ClaimOutcome.PENDING:
        logger.info("email kept until the order's OrderCreated names its recipient", extra=extra)
        return ConfirmationResult(order_id, outcome, kind=kind)
    if outcome is ClaimOutcome.ALREADY_SENT:
        logger.info("email already sent", extra=extra)
        return ConfirmationResult(order_id, outcome, kind=kind)
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

    mark(mark_sent)
    logger.info("email sent", extra={**extra, "message_id": message_id})
    return ConfirmationResult(order_id, outcome, message_id, kind=kind)


def _release(uow: UnitOfWork, order_id: uuid.UUID, kind: EmailKind, token: uuid.UUID) -> None:
    with uow:
        uow.emails.release(order_id, token, kind)
        uow.commit()
