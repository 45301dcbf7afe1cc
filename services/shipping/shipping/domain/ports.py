"""Ports of the shipping service: what its use cases need from the outside."""

from __future__ import annotations

import uuid
from typing import Any, Protocol, Self

from common.events import DomainEvent
from shipping.domain.model import Shipment


class ShipmentRepository(Protocol):
    def add(self, shipment: Shipment) -> bool:
        """Insert ``shipment``; False, changing nothing, when its order already has one."""
        ...

    def get_for_order(self, order_id: uuid.UUID) -> Shipment | None: ...


class Outbox(Protocol):
    def add(self, event: DomainEvent) -> int: ...


class ProcessedEvents(Protocol):
    def mark(self, consumer: str, event_id: uuid.UUID) -> bool: ...


class UnitOfWork(Protocol):
    @property
    def shipments(self) -> ShipmentRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def processed(self) -> ProcessedEvents: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

    def commit(self) -> None: ...
