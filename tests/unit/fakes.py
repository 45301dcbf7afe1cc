"""In-memory adapters of the orders ports (orders/domain/ports.py), for unit tests.

They keep the semantics the use cases rely on and nothing more: a unit of work
whose changes are discarded unless ``commit()`` is called, an order repository
that refuses a second order with the same id or the same customer and
Idempotency-Key (``add`` returns False, as the SQL adapter's ON CONFLICT DO
NOTHING does), keyset pagination newest first. No sockets, no database.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Self

from common.events import DomainEvent
from orders.domain.model import Order, OrderStatus, Product
from orders.domain.status import OrderState


@dataclass
class Store:
    """What is committed: shared by every unit of work built on it (the "database")."""

    products: dict[str, Product] = field(default_factory=dict)
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    outbox: list[DomainEvent] = field(default_factory=list)


class FakeProductRepository:
    def __init__(self, products: dict[str, Product]) -> None:
        self._products = products

    def get_many(self, skus: list[str]) -> dict[str, Product]:
        return {sku: self._products[sku] for sku in skus if sku in self._products}

    def get(self, sku: str) -> Product | None:
        return self._products.get(sku)

    def list_page(self, limit: int, after: str | None) -> list[Product]:
        skus = sorted(sku for sku in self._products if after is None or sku > after)
        return [self._products[sku] for sku in skus[:limit]]

    def upsert(self, product: Product) -> Product:
        self._products[product.sku] = product
        return product


class FakeOrderRepository:
    def __init__(self, orders: dict[uuid.UUID, Order]) -> None:
        self._orders = orders
        # Called at the start of add(): lets a test commit a concurrent twin
        # between the use case's idempotency check and its insert.
        self.before_add: Callable[[], None] | None = None

    def add(self, order: Order) -> bool:
        if self.before_add is not None:
            hook, self.before_add = self.before_add, None
            hook()
        if order.order_id in self._orders:
            return False
        if order.idempotency_key is not None and any(
            o.customer_id == order.customer_id and o.idempotency_key == order.idempotency_key
            for o in self._orders.values()
        ):
            return False
        self._orders[order.order_id] = copy.deepcopy(order)
        return True

    def get(self, order_id: uuid.UUID) -> Order | None:
        found = self._orders.get(order_id)
        return copy.deepcopy(found) if found else None

    def get_by_idempotency_key(self, customer_id: str, key: str) -> Order | None:
        for order in self._orders.values():
            if order.customer_id == customer_id and order.idempotency_key == key:
                return copy.deepcopy(order)
        return None

    def list_recent(
        self,
        customer_id: str | None,
        status: OrderStatus | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Order]:
        mine = sorted(
            (
                o
                for o in self._orders.values()
                if customer_id in (None, o.customer_id) and status in (None, o.status)
            ),
            key=lambda o: (o.created_at, o.order_id),
            reverse=True,
        )
        if after is not None:
            mine = [o for o in mine if (o.created_at, o.order_id) < after]
        return [copy.deepcopy(o) for o in mine[:limit]]

    def lock_state(self, order_id: uuid.UUID) -> OrderState | None:
        order = self._orders.get(order_id)
        if order is None:
            return None
        return OrderState(
            order.order_id, order.customer_id, order.status, order.rejection_reason, order.cancellation_reason
        )

    def mark_cancelling(self, order_id: uuid.UUID, reason: str | None, at: datetime) -> None:
        self._orders[order_id] = replace(
            self._orders[order_id], status=OrderStatus.CANCELLING, cancellation_reason=reason, updated_at=at
        )


class FakeOutbox:
    """The outbox port on a list (each service's fake unit of work owns the list)."""

    def __init__(self, events: list[DomainEvent]) -> None:
        self._events = events

    def add(self, event: DomainEvent) -> int:
        self._events.append(event)
        return len(self._events)  # like an identity column: 1, 2, 3...


class FakeProcessed:
    """The processed-events port on a set of (consumer, event id)."""

    def __init__(self, seen: set[tuple[str, uuid.UUID]]) -> None:
        self._seen = seen

    def mark(self, consumer: str, event_id: uuid.UUID) -> bool:
        if (consumer, event_id) in self._seen:
            return False
        self._seen.add((consumer, event_id))
        return True


class FakeUnitOfWork:
    """Works on a copy of the store; ``commit()`` makes the copy the store.

    Records what happened so tests can tell a commit from a silent rollback.
    """

    products: FakeProductRepository
    orders: FakeOrderRepository
    outbox: FakeOutbox

    def __init__(self, store: Store | None = None) -> None:
        self.store = store if store is not None else Store()
        self.commits = 0
        self.rollbacks = 0
        self.entered = 0
        self._working: Store | None = None
        self._committed = False
        # Runs once, inside the next order insert (see ``commit_concurrently``).
        self.before_next_insert: Callable[[], None] | None = None

    def __enter__(self) -> Self:
        self.entered += 1
        self._committed = False
        self._working = copy.deepcopy(self.store)
        self.products = FakeProductRepository(self._working.products)
        self.orders = FakeOrderRepository(self._working.orders)
        self.orders.before_add, self.before_next_insert = self.before_next_insert, None
        self.outbox = FakeOutbox(self._working.outbox)
        return self

    def __exit__(self, *args: object) -> None:
        if not self._committed:
            self.rollbacks += 1
        self._working = None

    def commit_concurrently(self, order: Order, event: DomainEvent | None = None) -> None:
        """Another transaction commits ``order`` now; this one's later reads see it
        (PostgreSQL's READ COMMITTED: each statement sees what was committed before it)."""
        self.store.orders[order.order_id] = copy.deepcopy(order)
        if event is not None:
            self.store.outbox.append(event)
        if self._working is not None:
            self._working.orders[order.order_id] = copy.deepcopy(order)

    def commit(self) -> None:
        assert self._working is not None, "commit() outside of `with uow:`"
        self.store.products = self._working.products
        self.store.orders = self._working.orders
        self.store.outbox = self._working.outbox
        self._committed = True
        self.commits += 1
