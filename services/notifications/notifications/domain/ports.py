"""Ports of the notifications service: what its use case needs from the outside."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Protocol, Self

from notifications.domain.confirmation import ConfirmationEmail
from notifications.domain.model import ClaimOutcome


class EmailSender(Protocol):
    def send(self, email: ConfirmationEmail) -> str:
        """Send ``email``; returns the provider's message id, raises when it was not accepted."""
        ...


class EmailClaims(Protocol):
    """The record of each order's email (one per order), claimed before sending."""

    def claim(
        self, order_id: uuid.UUID, event_id: uuid.UUID, token: uuid.UUID, ttl: timedelta
    ) -> ClaimOutcome:
        """Claim the order's email for the invocation holding ``token``, for ``ttl``.

        An existing claim is re-taken only once it has expired (its invocation is
        dead), or when it already holds ``token`` (a retried transaction of ours).
        """
        ...

    def mark_sent(self, order_id: uuid.UUID, token: uuid.UUID, message_id: str) -> bool:
        """Record the send; False when the claim is no longer ``token``'s."""
        ...

    def release(self, order_id: uuid.UUID, token: uuid.UUID) -> bool:
        """Drop ``token``'s claim (the send failed); False when it held none."""
        ...


class ProcessedEvents(Protocol):
    def mark(self, consumer: str, event_id: uuid.UUID) -> bool: ...

    def unmark(self, consumer: str, event_id: uuid.UUID) -> None: ...


class UnitOfWork(Protocol):
    # Read-only properties, so that an adapter may hold a more specific type.
    @property
    def emails(self) -> EmailClaims: ...

    @property
    def processed(self) -> ProcessedEvents: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

    def commit(self) -> None: ...
