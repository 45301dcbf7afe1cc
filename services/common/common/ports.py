"""Ports every service shares: its transaction, its outbox, its record of handled events.

Each service's ``domain/ports.py`` extends ``UnitOfWork`` with its repositories.
Members are read-only properties, so that an adapter may hold a more specific type.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, Self

from common.events import DomainEvent


class Outbox(Protocol):
    def add(self, event: DomainEvent) -> int:
        """Store ``event`` in this transaction; returns its outbox id."""
        ...


class ProcessedEvents(Protocol):
    def mark(self, consumer: str, event_id: uuid.UUID) -> bool:
        """True the first time; False when ``consumer`` already handled ``event_id``."""
        ...


class UnitOfWork(Protocol):
    """One transaction: rolled back on leaving ``with`` unless ``commit()`` was called."""

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

    def commit(self) -> None: ...


class PublishingUnitOfWork(UnitOfWork, Protocol):
    @property
    def outbox(self) -> Outbox: ...


class ConsumingUnitOfWork(PublishingUnitOfWork, Protocol):
    @property
    def processed(self) -> ProcessedEvents: ...
