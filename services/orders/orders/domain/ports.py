"""Ports of the orders service: what its use cases need from the outside."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from common.ports import ConsumingUnitOfWork, PublishingUnitOfWork
from orders.domain.model import Order, OrderStatus, Product
from orders.domain.status import OrderState


class ProductRepository(Protocol):
    def get_many(self, skus: list[str]) -> dict[str, Product]: ...

    def get(self, sku: str) -> Product | None: ...

    def list_page(self, limit: int, after: str | None) -> list[Product]:
        """Products by SKU; ``after`` is the SKU of the last one seen."""
        ...

    def upsert(self, product: Product) -> Product: ...


class OrderRepository(Protocol):
    def add(self, order: Order) -> bool:
        """Insert ``order``; False when its id or idempotency key already exists."""
        ...

    def get(self, order_id: uuid.UUID) -> Order | None: ...

    def get_by_idempotency_key(self, customer_id: str, key: str) -> Order | None: ...

    def list_recent(
        self,
        customer_id: str | None,
        status: OrderStatus | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Order]:
        """Newest first, the customer's (``None``: every customer's), in ``status`` if given;
        ``after`` is the (created_at, order_id) of the last one seen."""
        ...

    def lock_state(self, order_id: uuid.UUID) -> OrderState | None:
        """The order's status, locked against concurrent changes until the transaction ends."""
        ...

    def mark_cancelling(self, order_id: uuid.UUID, reason: str | None, at: datetime) -> None:
        """The order is CANCELLING, with the reason given (if any)."""
        ...


class UnitOfWork(PublishingUnitOfWork, Protocol):
    @property
    def products(self) -> ProductRepository: ...

    @property
    def orders(self) -> OrderRepository: ...


# --- order status (OrderStatusFunction) ---


class OrderStatusRepository(Protocol):
    def lock_state(self, order_id: uuid.UUID) -> OrderState | None:
        """The order's status, locked against concurrent changes until the transaction ends."""
        ...

    def set_status(
        self, order_id: uuid.UUID, status: OrderStatus, rejection_reason: str | None, at: datetime
    ) -> None: ...


class StatusUnitOfWork(ConsumingUnitOfWork, Protocol):
    @property
    def orders(self) -> OrderStatusRepository: ...
