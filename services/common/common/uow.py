"""Unit of work around one SQLAlchemy connection and transaction.

``with uow:`` opens a transaction that is rolled back unless ``uow.commit()`` is
called; the outbox writes through the same connection, so an event is stored if
and only if the state it announces is.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Self

from sqlalchemy.engine import Connection, Engine, RootTransaction

from common import inbox
from common.events import DomainEvent
from common.outbox import writer


class SqlOutbox:
    """The outbox of a function that publishes its rows itself right after the commit
    (``Container.publish_committed``): each row is written leased to this process."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.ids: list[int] = []

    def add(self, event: DomainEvent) -> int:
        outbox_id = writer.add_event(self._connection, event, lease=True)
        self.ids.append(outbox_id)
        return outbox_id


class SqlProcessedEvents:
    """A consumer's record of the events it has handled (idempotency on eventId)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def mark(self, consumer: str, event_id: uuid.UUID) -> bool:
        """True the first time; False when ``consumer`` already handled ``event_id``."""
        return inbox.mark_processed(self._connection, consumer, event_id)


class SqlUnitOfWork:
    """Base for each service's unit of work; subclasses bind their repositories."""

    connection: Connection
    outbox: SqlOutbox
    processed: SqlProcessedEvents

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._transaction: RootTransaction | None = None

    def bind(self, connection: Connection) -> None:
        """Create the service's repositories on ``connection``."""

    def __enter__(self) -> Self:
        self.connection = self._engine.connect()
        self._transaction = self.connection.begin()
        self._committed = False
        self.outbox = SqlOutbox(self.connection)
        self.processed = SqlProcessedEvents(self.connection)
        self.bind(self.connection)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self.connection.close()
            if not self._committed:
                writer.forget(self.outbox.ids)

    def commit(self) -> None:
        assert self._transaction is not None
        self._transaction.commit()
        self._committed = True

    def rollback(self) -> None:
        assert self._transaction is not None
        self._transaction.rollback()
