"""PostgreSQL adapters of the notifications ports (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Text, bindparam, cast, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection

from common.uow import SqlProcessedEvents, SqlUnitOfWork
from notifications.adapters.tables import emails, pending_emails, recipients
from notifications.domain.model import ClaimOutcome, EmailKind, EmailStatus


class SqlEmailClaims:
    """``notifications.emails``: one row per order and kind, CLAIMED then SENT.

    Every time comparison uses the database's clock, so that containers with
    drifting clocks agree on when a claim has expired.
    """

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def claim(
        self,
        order_id: uuid.UUID,
        event_id: uuid.UUID,
        token: uuid.UUID,
        ttl: timedelta,
        kind: EmailKind = EmailKind.CONFIRMATION,
    ) -> ClaimOutcome:
        claim = {
            "event_id": event_id,
            "claim_token": token,
            "claimed_at": func.now(),
            "claim_expires_at": func.now() + ttl,
        }
        inserted = self._c.execute(
            insert(emails)
            .values(order_id=order_id, kind=kind.value, status=EmailStatus.CLAIMED.value, **claim)
            # A concurrent twin waits here until the first claim commits, then inserts nothing.
            .on_conflict_do_nothing()
            .returning(emails.c.order_id)
        ).first()
        if inserted is not None:
            return ClaimOutcome.CLAIMED

        existing = self._c.execute(
            select(
                emails.c.status,
                emails.c.claim_token,
                (emails.c.claim_expires_at < func.now()).label("expired"),
            )
            .where(emails.c.order_id == order_id, emails.c.kind == kind.value)
            .with_for_update()
        ).one()
        if existing.status == EmailStatus.SENT:
            return ClaimOutcome.ALREADY_SENT
        if existing.claim_token == token:
            return ClaimOutcome.CLAIMED  # our own claim: this transaction is a retry
        if not existing.expired:
            return ClaimOutcome.IN_FLIGHT
        self._c.execute(
            update(emails).where(emails.c.order_id == order_id, emails.c.kind == kind.value).values(**claim)
        )
        return ClaimOutcome.RETAKEN

    def mark_sent(
        self, order_id: uuid.UUID, token: uuid.UUID, message_id: str, kind: EmailKind = EmailKind.CONFIRMATION
    ) -> bool:
        result = self._c.execute(
            update(emails)
            .where(emails.c.order_id == order_id, emails.c.kind == kind.value, emails.c.claim_token == token)
            .values(status=EmailStatus.SENT.value, message_id=message_id, sent_at=func.now())
            .returning(emails.c.order_id)
        )
        return result.first() is not None

    def release(
        self, order_id: uuid.UUID, token: uuid.UUID, kind: EmailKind = EmailKind.CONFIRMATION
    ) -> bool:
        result = self._c.execute(
            delete(emails)
            .where(
                emails.c.order_id == order_id,
                emails.c.kind == kind.value,
                emails.c.claim_token == token,
                emails.c.status == EmailStatus.CLAIMED.value,
            )
            .returning(emails.c.order_id)
        )
        return result.first() is not None


class SqlRecipients:
    """``notifications.recipients``: where each order's emails go."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record(self, order_id: uuid.UUID, email: str) -> None:
        self._c.execute(insert(recipients).values(order_id=order_id, email=email).on_conflict_do_nothing())

    def get(self, order_id: uuid.UUID) -> str | None:
        return self._c.execute(
            select(recipients.c.email).where(recipients.c.order_id == order_id)
        ).scalar_one_or_none()

    def lock(self, order_id: uuid.UUID) -> None:
        # A transaction-scoped advisory lock on the order: recording its recipient and
        # keeping one of its emails pending never interleave, so no pending email is
        # stored after the OrderCreated that would send it has looked.
        self._c.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": order_id.int & 0x7FFF_FFFF_FFFF_FFFF}
        )


class SqlPendingEmails:
    """``notifications.pending_emails``: emails waiting for their order's recipient."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def keep(self, order_id: uuid.UUID, kind: EmailKind, event_id: uuid.UUID, event: str) -> None:
        self._c.execute(
            insert(pending_emails)
            .values(
                order_id=order_id,
                kind=kind.value,
                event_id=event_id,
                event=cast(bindparam("event_json", event), JSONB),
            )
            .on_conflict_do_nothing()
        )

    def of_order(self, order_id: uuid.UUID) -> list[tuple[EmailKind, uuid.UUID, str]]:
        rows = self._c.execute(
            select(pending_emails.c.kind, pending_emails.c.event_id, cast(pending_emails.c.event, Text))
            .where(pending_emails.c.order_id == order_id)
            .order_by(pending_emails.c.received_at)
        ).all()
        return [(EmailKind(r[0]), r[1], r[2]) for r in rows]

    def drop(self, order_id: uuid.UUID, kind: EmailKind) -> None:
        self._c.execute(
            delete(pending_emails).where(
                pending_emails.c.order_id == order_id, pending_emails.c.kind == kind.value
            )
        )


class NotificationsUnitOfWork(SqlUnitOfWork):
    emails: SqlEmailClaims
    recipients: SqlRecipients
    pending: SqlPendingEmails
    processed: SqlProcessedEvents

    def bind(self, connection: Connection) -> None:
        self.emails = SqlEmailClaims(connection)
        self.recipients = SqlRecipients(connection)
        self.pending = SqlPendingEmails(connection)
        self.processed = SqlProcessedEvents(connection)
