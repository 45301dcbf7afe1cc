"""PostgreSQL adapters of the orders ports (SQLAlchemy Core, parameterised queries)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Numeric,
    SmallInteger,
    Text,
    Uuid,
    and_,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import Connection, Row

from common.money import Money
from common.uow import SqlUnitOfWork
from orders.adapters.tables import order_items, orders, products
from orders.domain.model import Order, OrderLine, OrderStatus, Product
from orders.domain.status import OrderState

# The hot statements of POST /orders, built once (and so compiled once): = ANY(array)
# rather than IN (...), whose list would be rendered into the SQL on every call.
_PRODUCTS_BY_SKU = select(products).where(products.c.sku == func.any(bindparam("skus", type_=ARRAY(Text))))


class SqlProductRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get_many(self, skus: list[str]) -> dict[str, Product]:
        rows = self._c.execute(_PRODUCTS_BY_SKU, {"skus": skus}).all()
        return {r.sku: _to_product(r) for r in rows}

    def get(self, sku: str) -> Product | None:
        found = self.get_many([sku])
        return found.get(sku)

    def list_page(self, limit: int, after: str | None) -> list[Product]:
        query = select(products).order_by(products.c.sku).limit(limit)
        if after is not None:
            query = query.where(products.c.sku > after)
        return [_to_product(r) for r in self._c.execute(query)]

    def upsert(self, product: Product) -> Product:
        values: dict[str, Any] = {
            "sku": product.sku,
            "name": product.name,
            "unit_price": product.unit_price.amount,
            "currency": product.currency,
        }
        stmt = insert(products).values(**values, updated_at=func.now())
        self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=[products.c.sku], set_={**values, "updated_at": func.now()}
            )
        )
        return product


# Any unique conflict (order id, or customer + Idempotency-Key) inserts nothing: a
# concurrent twin waits on the key for the first to commit, then sees it.
_INSERT_ORDER = insert(orders).on_conflict_do_nothing().returning(orders.c.order_id)
# All of an order's lines in one statement, one array per column: a single round trip
# whatever the number of lines (pg8000's executemany would send one statement per line),
# and one SQL text (a multi-row VALUES is a new statement for each line count).
_LINES = (
    func.unnest(
        bindparam("line_nos", type_=ARRAY(SmallInteger)),
        bindparam("skus", type_=ARRAY(Text)),
        bindparam("quantities", type_=ARRAY(Integer)),
        bindparam("unit_prices", type_=ARRAY(Numeric(16, 4))),
        bindparam("line_totals", type_=ARRAY(Numeric(18, 4))),
    )
    .table_valued("line_no", "sku", "quantity", "unit_price", "line_total")
    .render_derived(name="line")
)
_INSERT_LINES = insert(order_items).from_select(
    ["order_id", "line_no", "sku", "quantity", "unit_price", "line_total"],
    select(
        bindparam("order_id", type_=Uuid),
        _LINES.c.line_no,
        _LINES.c.sku,
        _LINES.c.quantity,
        _LINES.c.unit_price,
        _LINES.c.line_total,
    ),
)


class SqlOrderRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, order: Order) -> bool:
        inserted = self._c.execute(
            _INSERT_ORDER,
            {
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "customer_email": order.customer_email,
                "status": order.status.value,
                "rejection_reason": order.rejection_reason,
                "total": order.total.amount,
                "currency": order.currency,
                "shipping_address": order.shipping_address,
                "correlation_id": order.correlation_id,
                "idempotency_key": order.idempotency_key,
                "request_hash": order.request_hash,
                "created_at": order.created_at,
                "updated_at": order.updated_at,
            },
        ).first()
        if inserted is None:
            return False
        lines = order.lines
        self._c.execute(
            _INSERT_LINES,
            {
                "order_id": order.order_id,
                "line_nos": list(range(1, len(lines) + 1)),
                "skus": [line.sku for line in lines],
                "quantities": [line.quantity for line in lines],
                "unit_prices": [line.unit_price.amount for line in lines],
                "line_totals": [line.line_total.amount for line in lines],
            },
        )
        return True

    def get(self, order_id: uuid.UUID) -> Order | None:
        found = self._load(orders.c.order_id == order_id, limit=1)
        return found[0] if found else None

    def get_by_idempotency_key(self, customer_id: str, key: str) -> Order | None:
        found = self._load(
            and_(orders.c.customer_id == customer_id, orders.c.idempotency_key == key), limit=1
        )
        return found[0] if found else None

    def list_recent(
        self,
        customer_id: str | None,
        status: OrderStatus | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Order]:
        # Each combination has its index (orders_0001, orders_0003): customer, status, neither.
        conditions = []
        if customer_id is not None:
            conditions.append(orders.c.customer_id == customer_id)
        if status is not None:
            conditions.append(orders.c.status == status.value)
        if after is not None:
            conditions.append(tuple_(orders.c.created_at, orders.c.order_id) < tuple_(*after))
        return self._load(*conditions, limit=limit)

    def _load(self, *conditions: Any, limit: int) -> list[Order]:
        rows = self._c.execute(
            select(orders)
            .where(*conditions)
            .order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
            .limit(limit)
        ).all()
        if not rows:
            return []
        currency = {r.order_id: r.currency for r in rows}
        lines: dict[uuid.UUID, list[OrderLine]] = defaultdict(list)
        for item in self._c.execute(
            select(order_items)
            .where(order_items.c.order_id.in_([r.order_id for r in rows]))
            .order_by(order_items.c.order_id, order_items.c.line_no)
        ):
            price = Money.of(item.unit_price, currency[item.order_id])
            lines[item.order_id].append(OrderLine(item.sku, item.quantity, price))
        return [_to_order(r, lines[r.order_id]) for r in rows]

    # --- order status (OrderStatusFunction) ---

    def lock_state(self, order_id: uuid.UUID) -> OrderState | None:
        """The order's status, its row locked (``FOR UPDATE``) until the transaction ends."""
        row = self._c.execute(
            select(
                orders.c.order_id,
                orders.c.customer_id,
                orders.c.status,
                orders.c.rejection_reason,
                orders.c.cancellation_reason,
            )
            .where(orders.c.order_id == order_id)
            .with_for_update()
        ).first()
        if row is None:
            return None
        return OrderState(
            row.order_id,
            row.customer_id,
            OrderStatus(row.status),
            row.rejection_reason,
            row.cancellation_reason,
        )

    def set_status(
        self, order_id: uuid.UUID, status: OrderStatus, rejection_reason: str | None, at: datetime
    ) -> None:
        self._c.execute(
            update(orders)
            .where(orders.c.order_id == order_id)
            .values(status=status.value, rejection_reason=rejection_reason, updated_at=at)
        )

    def mark_cancelling(self, order_id: uuid.UUID, reason: str | None, at: datetime) -> None:
        self._c.execute(
            update(orders)
            .where(orders.c.order_id == order_id)
            .values(status=OrderStatus.CANCELLING.value, cancellation_reason=reason, updated_at=at)
        )


def _to_product(row: Row[Any]) -> Product:
    return Product(row.sku, row.name, Money.of(row.unit_price, row.currency))


def _to_order(row: Row[Any], lines: list[OrderLine]) -> Order:
    return Order(
        order_id=row.order_id,
        customer_id=row.customer_id,
        customer_email=row.customer_email,
        status=OrderStatus(row.status),
        lines=lines,
        currency=row.currency,
        shipping_address=row.shipping_address,
        correlation_id=row.correlation_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        rejection_reason=row.rejection_reason,
        cancellation_reason=row.cancellation_reason,
        idempotency_key=row.idempotency_key,
        request_hash=row.request_hash,
    )


class OrdersUnitOfWork(SqlUnitOfWork):
    products: SqlProductRepository
    orders: SqlOrderRepository

    def bind(self, connection: Connection) -> None:
        self.products = SqlProductRepository(connection)
        self.orders = SqlOrderRepository(connection)
