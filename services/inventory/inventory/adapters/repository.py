"""PostgreSQL adapters of the inventory ports (SQLAlchemy Core, parameterised queries)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import Text, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import Connection

from common.uow import SqlUnitOfWork
from inventory.adapters.tables import order_outcomes, reservations, settlements, stock
from inventory.domain.model import Outcome, Settlement, StockLevel

# The hot path's statements are built once: each execution then reuses the compiled
# form from SQLAlchemy's cache without building or hashing a new statement.
_LOCK = (
    select(stock.c.sku, stock.c.on_hand, stock.c.reserved)
    # = ANY(array) rather than an expanding IN: one SQL text whatever the number of SKUs.
    .where(stock.c.sku == any_(bindparam("skus", type_=ARRAY(Text))))
    .order_by(stock.c.sku)
    .with_for_update()
)
_ADD_RESERVED = (
    stock.update()
    .where(stock.c.sku == bindparam("b_sku"))
    .values(reserved=stock.c.reserved + bindparam("b_quantity"), updated_at=func.now())
)
_DECIDE = (
    insert(order_outcomes)
    .values(order_id=bindparam("order_id"), outcome=bindparam("outcome"), event_id=bindparam("event_id"))
    .on_conflict_do_nothing(index_elements=[order_outcomes.c.order_id])
    .returning(order_outcomes.c.order_id)
)
# onHand and reserved fall together, for every SKU of the order, in one statement.
_CONSUME = (
    stock.update()
    .where(stock.c.sku == reservations.c.sku)
    .where(reservations.c.order_id == bindparam("b_order_id"))
    .values(
        on_hand=stock.c.on_hand - reservations.c.quantity,
        reserved=stock.c.reserved - reservations.c.quantity,
        updated_at=func.now(),
    )
)
_RELEASE = (
    stock.update()
    .where(stock.c.sku == reservations.c.sku)
    .where(reservations.c.order_id == bindparam("b_order_id"))
    .values(reserved=stock.c.reserved - reservations.c.quantity, updated_at=func.now())
)
_SETTLE = (
    insert(settlements)
    .values(
        order_id=bindparam("order_id"), settlement=bindparam("settlement"), event_id=bindparam("event_id")
    )
    .on_conflict_do_nothing(index_elements=[settlements.c.order_id])
    .returning(settlements.c.order_id)
)
_ADD_LINES = reservations.insert().values(
    order_id=bindparam("order_id"), sku=bindparam("sku"), quantity=bindparam("quantity")
)


class SqlStockRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def lock(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        rows = self._c.execute(_LOCK, {"skus": sorted(skus)}).all()
        return {r.sku: StockLevel(r.sku, r.on_hand, r.reserved) for r in rows}

    def get(self, sku: str) -> StockLevel | None:
        row = self._c.execute(
            select(stock.c.sku, stock.c.on_hand, stock.c.reserved).where(stock.c.sku == sku)
        ).first()
        return StockLevel(row.sku, row.on_hand, row.reserved) if row else None

    def add_reserved(self, quantities: Mapping[str, int]) -> None:
        # The CHECK (reserved <= on_hand) backs the use case's own check: if the
        # two ever disagreed, the transaction would fail rather than oversell.
        self._c.execute(
            _ADD_RESERVED,
            [{"b_sku": sku, "b_quantity": q} for sku, q in sorted(quantities.items())],
        )

    def consume(self, order_id: uuid.UUID) -> None:
        self._c.execute(_CONSUME, {"b_order_id": order_id})

    def release(self, order_id: uuid.UUID) -> None:
        self._c.execute(_RELEASE, {"b_order_id": order_id})

    def set_on_hand(self, sku: str, on_hand: int) -> StockLevel | None:
        stmt = insert(stock).values(sku=sku, on_hand=on_hand, reserved=0, updated_at=func.now())
        row = self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=[stock.c.sku],
                set_={"on_hand": stmt.excluded.on_hand, "updated_at": func.now()},
                # Checked again at write time: a row created by a concurrent PUT is
                # updated here without the use case having seen it.
                where=stock.c.reserved <= stmt.excluded.on_hand,
            ).returning(stock.c.sku, stock.c.on_hand, stock.c.reserved)
        ).first()
        return StockLevel(row.sku, row.on_hand, row.reserved) if row else None


class SqlReservationRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def decide(self, order_id: uuid.UUID, outcome: Outcome, event_id: uuid.UUID) -> bool:
        row = self._c.execute(
            _DECIDE, {"order_id": order_id, "outcome": outcome.value, "event_id": event_id}
        ).first()
        return row is not None

    def add(self, order_id: uuid.UUID, quantities: Mapping[str, int]) -> None:
        self._c.execute(
            _ADD_LINES,
            [{"order_id": order_id, "sku": sku, "quantity": q} for sku, q in quantities.items()],
        )

    def quantities(self, order_id: uuid.UUID) -> dict[str, int]:
        rows = self._c.execute(
            select(reservations.c.sku, reservations.c.quantity).where(reservations.c.order_id == order_id)
        )
        return {r.sku: r.quantity for r in rows}

    def settle(self, order_id: uuid.UUID, settlement: Settlement, event_id: uuid.UUID) -> bool:
        row = self._c.execute(
            _SETTLE, {"order_id": order_id, "settlement": settlement.value, "event_id": event_id}
        ).first()
        return row is not None


class InventoryUnitOfWork(SqlUnitOfWork):
    stock: SqlStockRepository
    reservations: SqlReservationRepository

    def bind(self, connection: Connection) -> None:
        self.stock = SqlStockRepository(connection)
        self.reservations = SqlReservationRepository(connection)
