"""Ports of the notifications service: what its use case needs from the outside."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Protocol

import common.ports
from notifications.domain.confirmation import ConfirmationEmail
from notifications.domain.model import ClaimOutcome, EmailKind


class EmailSender(Protocol):
    def send(self, email: ConfirmationEmail) -> str:
        """Send ``email``; returns the provider's message id, raises when it was not accepted."""
        ...


class EmailClaims(Protocol):
    """The record of each order's emails (one of each kind per order), claimed before sending."""

    def claim(
        self,
        order_id: uuid.UUID,
        event_id: uuid.UUID,
        token: uuid.UUID,
        ttl: timedelta,
        kind: EmailKind = ...,
    ) -> ClaimOutcome:
        """Claim the order's email for the invocation holding ``token``, for ``ttl``.

        An existing claim is re-taken only once it has expired (its invocation is
        dead), or when it already holds ``token`` (a retried transaction of ours).
        """
        ...

    def mark_sent(
        self, order_id: uuid.UUID, token: uuid.UUID, message_id: str, kind: EmailKind = ...
    ) -> bool:
        """Record the send; False when the claim is no longer ``token``'s."""
        ...

    def release(self, order_id: uuid.UUID, token: uuid.UUID, kind: EmailKind = ...) -> bool:
        """Drop ``token``'s claim (the send failed); False when it held none."""
        ...


class Recipients(Protocol):
    def record(self, order_id: uuid.UUID, email: str) -> None:
        """Remember where the order's emails go (the first address recorded stands)."""
        ...

    def get(self, order_id: uuid.UUID) -> str | None: ...

    def lock(self, order_id: uuid.UUID) -> None:
        """Serialise, until the transaction ends, with any other transaction on the
        order's recipient or pending emails."""
        ...


class PendingEmails(Protocol):
    """Emails whose order's recipient is not known yet (its OrderCreated not handled)."""

    def keep(self, order_id: uuid.UUID, kind: EmailKind, event_id: uuid.UUID, event: str) -> None:
        """Keep the email ``event`` (its detail as JSON) calls for; one per order and kind."""
        ...

    def of_order(self, order_id: uuid.UUID) -> list[tuple[EmailKind, uuid.UUID, str]]:
        """The order's pending emails: (kind, event id, event JSON), oldest first."""
        ...

    def drop(self, order_id: uuid.UUID, kind: EmailKind) -> None: ...


class UnitOfWork(common.ports.UnitOfWork, Protocol):
    @property
    def emails(self) -> EmailClaims: ...

    @property
    def recipients(self) -> Recipients: ...

    @property
    def pending(self) -> PendingEmails: ...

    @property
    def processed(self) -> common.ports.ProcessedEvents: ...
