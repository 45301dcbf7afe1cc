"""orders_0003 on a database with existing orders: every amount carried over exactly, or
nothing changed and the rows that cannot be carried named."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from common.money import Money
from orderflow.migrate import downgrade, upgrade
from orders.adapters.repository import SqlOrderRepository, SqlProductRepository
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.db]

ADDRESS = json.dumps({"name": "A", "line1": "1 Main St", "city": "L", "postalCode": "N1", "country": "GB"})


@pytest.fixture
def before_money(database_url: str) -> Iterator[Engine]:
    """A new database with the orders schema as it was before per-currency money."""
    base = make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
    with fresh_database(base, migrated=False) as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            upgrade(conn, "orders", "orders_0002")
        yield engine
        engine.dispose()


def add_product(conn: Any, sku: str, price: str, currency: str) -> None:
    conn.execute(
        text("INSERT INTO orders.products (sku, name, unit_price, currency) VALUES (:s, :s, :p, :c)"),
        {"s": sku, "p": Decimal(price), "c": currency},
    )


def add_order(conn: Any, currency: str, lines: list[tuple[str, int, str]]) -> uuid.UUID:
    order_id = uuid.uuid4()
    total = sum((Decimal(price) * qty for _, qty, price in lines), Decimal(0))
    conn.execute(
        text(
            "INSERT INTO orders.orders (order_id, customer_id, customer_email, status, total, currency,"
            " shipping_address, correlation_id, created_at, updated_at)"
            " VALUES (:o, 'c-1', 'a@example.com', 'PENDING', :t, :c, CAST(:a AS jsonb), 'corr', now(), now())"
        ),
        {"o": order_id, "t": total, "c": currency, "a": ADDRESS},
    )
    for n, (sku, qty, price) in enumerate(lines, start=1):
        conn.execute(
            text(
                "INSERT INTO orders.order_items (order_id, line_no, sku, quantity, unit_price, line_total)"
                " VALUES (:o, :n, :s, :q, :p, :l)"
            ),
            {"o": order_id, "n": n, "s": sku, "q": qty, "p": Decimal(price), "l": Decimal(price) * qty},
        )
    return order_id


def scales(conn: Any) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        text(
            "SELECT table_name || '.' || column_name, numeric_precision, numeric_scale"
            " FROM information_schema.columns WHERE table_schema = 'orders' AND data_type = 'numeric'"
        )
    ).all()
    return {name: (precision, scale) for name, precision, scale in rows}


def revision(conn: Any) -> str:
    return conn.execute(text("SELECT version_num FROM orders.alembic_version")).scalar_one()


def test_existing_orders_and_prices_are_carried_over_exactly(before_money: Engine) -> None:
    # Given orders and a catalog written with two places, as every amount was
    with before_money.begin() as conn:
        add_product(conn, "US-1", "12.50", "USD")
        add_product(conn, "JP-1", "1200.00", "JPY")
        add_product(conn, "KW-1", "1.25", "KWD")
        add_product(conn, "CL-1", "0.10", "CLF")
        yen = add_order(conn, "JPY", [("JP-1", 1000, "1200.00"), ("JP-2", 3, "980.00")])
        dollars = add_order(conn, "USD", [("US-1", 3, "0.10"), ("US-2", 1, "9999999999.99")])
        dinars = add_order(conn, "KWD", [("KW-1", 7, "1.25")])

    # When the schema is upgraded
    with before_money.begin() as conn:
        upgrade(conn, "orders", "orders_0003")

    # Then every amount column holds four places, and every amount reads back exactly
    with before_money.begin() as conn:
        assert revision(conn) == "orders_0003"
        assert scales(conn) == {
            "products.unit_price": (16, 4),
            "orders.total": (18, 4),
            "order_items.unit_price": (16, 4),
            "order_items.line_total": (18, 4),
        }
        products = SqlProductRepository(conn).get_many(["US-1", "JP-1", "KW-1", "CL-1"])
        assert {sku: str(p.unit_price) for sku, p in products.items()} == {
            "US-1": "12.50",
            "JP-1": "1200",
            "KW-1": "1.250",
            "CL-1": "0.1000",
        }
        orders = SqlOrderRepository(conn)
        order = orders.get(yen)
        assert order is not None
        assert [str(line.line_total) for line in order.lines] == ["1200000", "2940"]
        assert order.total == Money(1202940, "JPY")
        stored = conn.execute(
            text("SELECT total FROM orders.orders WHERE order_id = :o"), {"o": yen}
        ).scalar_one()
        assert Money.of(stored, "JPY") == order.total
        order = orders.get(dollars)
        assert order is not None and str(order.total) == "10000000000.29"
        order = orders.get(dinars)
        assert order is not None and str(order.total) == "8.750"


@pytest.mark.parametrize(
    ("setup", "named"),
    [
        (lambda c: add_product(c, "JP-9", "1200.50", "JPY"), "product JP-9 unitPrice: 1200.50 JPY"),
        (lambda c: add_product(c, "ZZ-9", "12.50", "ZZZ"), "product ZZ-9 unitPrice: 12.50 ZZZ"),
        (lambda c: add_order(c, "JPY", [("JP-9", 1, "0.50")]), "line 1 unitPrice: 0.50 JPY"),
    ],
)
def test_an_amount_that_would_need_rounding_stops_the_upgrade_and_is_named(
    before_money: Engine, setup: Any, named: str
) -> None:
    with before_money.begin() as conn:
        add_product(conn, "US-1", "12.50", "USD")
        setup(conn)

    with pytest.raises(RuntimeError, match="nothing was changed") as refused, before_money.begin() as conn:
        upgrade(conn, "orders", "head")

    assert named in str(refused.value)
    assert "US-1" not in str(refused.value)
    with before_money.begin() as conn:
        assert revision(conn) == "orders_0002"
        assert scales(conn)["products.unit_price"] == (12, 2)


def test_the_downgrade_goes_back_to_two_places_only_when_nothing_would_be_rounded(
    before_money: Engine,
) -> None:
    with before_money.begin() as conn:
        upgrade(conn, "orders", "head")
        add_product(conn, "KW-1", "1.250", "KWD")
        add_product(conn, "KW-2", "1.255", "KWD")

    with pytest.raises(RuntimeError, match=r"KW-2 unitPrice: 1\.2550 KWD"), before_money.begin() as conn:
        downgrade(conn, "orders", "orders_0002")

    with before_money.begin() as conn:
        conn.execute(text("DELETE FROM orders.products WHERE sku = 'KW-2'"))
        downgrade(conn, "orders", "orders_0002")
    with before_money.begin() as conn:
        assert revision(conn) == "orders_0002"
        price = conn.execute(text("SELECT unit_price FROM orders.products WHERE sku = 'KW-1'")).scalar_one()
        assert price == Decimal("1.25")
