"""Ports of the inventory service: what its use cases need from the outside."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from common.ports import ConsumingUnitOfWork
from inventory.domain.model import Outcome, Settlement, StockLevel


class StockRepository(Protocol):
    def lock(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        """The known SKUs' levels, locked until the transaction ends, in SKU order
        (every transaction locks in the same order, so none deadlocks another)."""
        ...

    def get(self, sku: str) -> StockLevel | None: ...

    def add_reserved(self, quantities: Mapping[str, int]) -> None:
        """Add to ``reserved``; the SKUs must be locked and have the stock."""
        ...

    def consume(self, order_id: uuid.UUID) -> None:
        """Take the order's reserved quantities out of ``on_hand`` and ``reserved``
        together, in one statement; the SKUs must be locked."""
        ...

    def release(self, order_id: uuid.UUID) -> None:
        """Give the order's reserved quantities back (``reserved`` falls), in one
        statement; the SKUs must be locked."""
        ...

    def set_on_hand(self, sku: str, on_hand: int) -> StockLevel | None:
        """Create or update the SKU's ``on_hand``; None, changing nothing, when that
        would put it below what is reserved."""
        ...


class ReservationRepository(Protocol):
    def decide(self, order_id: uuid.UUID, outcome: Outcome, event_id: uuid.UUID) -> bool:
        """Record the order's one decision; False when an earlier event already made it."""
        ...

    def add(self, order_id: uuid.UUID, quantities: Mapping[str, int]) -> None: ...

    def quantities(self, order_id: uuid.UUID) -> dict[str, int]:
        """The order's reserved quantities per SKU (empty when nothing was reserved)."""
        ...

    def settle(self, order_id: uuid.UUID, settlement: Settlement, event_id: uuid.UUID) -> bool:
        """Record how the order's reservation ended; False when it already had."""
        ...


class UnitOfWork(ConsumingUnitOfWork, Protocol):
    @property
    def stock(self) -> StockRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...
