"""orders: amounts exact to each currency's ISO 4217 minor unit (0 to 4 digits)

Revision ID: orders_0003
Revises: orders_0002

Every amount was NUMERIC with 2 places. Each becomes NUMERIC with 4 (ISO 4217's
largest exponent), which carries every existing value over unchanged. A row that the
new rules cannot hold exactly (a price of "1200.50" JPY, or a currency that is not an
ISO 4217 code with a minor unit, both accepted before) would have to be rounded or
guessed at: the upgrade refuses instead and names the rows, to be corrected first.
"""

import sqlalchemy as sa
from alembic import op

from common.iso4217 import MINOR_UNITS

revision = "orders_0003"
down_revision = "orders_0002"
branch_labels = None
depends_on = None

# (table, column, new type, old type)
AMOUNTS = (
    ("products", "unit_price", sa.Numeric(16, 4), sa.Numeric(12, 2)),
    ("orders", "total", sa.Numeric(18, 4), sa.Numeric(14, 2)),
    ("order_items", "unit_price", sa.Numeric(16, 4), sa.Numeric(12, 2)),
    ("order_items", "line_total", sa.Numeric(18, 4), sa.Numeric(14, 2)),
)

# Every stored amount with its row's name and its currency's ISO exponent (NULL: unknown).
_AMOUNTS_SQL = """
WITH iso(code, exponent) AS (SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:exponents AS int[]))),
amounts(what, amount, currency) AS (
    SELECT 'product ' || sku || ' unitPrice', unit_price, currency FROM orders.products
    UNION ALL
    SELECT 'order ' || order_id || ' total', total, currency FROM orders.orders
    UNION ALL
    SELECT 'order ' || o.order_id || ' line ' || i.line_no || ' unitPrice', i.unit_price, o.currency
    FROM orders.order_items i JOIN orders.orders o USING (order_id)
    UNION ALL
    SELECT 'order ' || o.order_id || ' line ' || i.line_no || ' lineTotal', i.line_total, o.currency
    FROM orders.order_items i JOIN orders.orders o USING (order_id)
)
SELECT what, amount::text, currency FROM amounts LEFT JOIN iso ON iso.code = amounts.currency
WHERE {condition}
ORDER BY what LIMIT 20
"""


def _refuse_rows(condition: str, problem: str) -> None:
    rows = (
        op.get_bind()
        .execute(
            sa.text(_AMOUNTS_SQL.format(condition=condition)),
            {"codes": list(MINOR_UNITS), "exponents": list(MINOR_UNITS.values())},
        )
        .all()
    )
    if rows:
        listed = "; ".join(f"{what}: {amount} {currency}" for what, amount, currency in rows)
        raise RuntimeError(f"{problem}, so nothing was changed. Correct these first: {listed}")


def upgrade() -> None:
    _refuse_rows(
        "iso.code IS NULL OR amount <> round(amount, iso.exponent)",
        "some amounts are in no ISO 4217 currency with a minor unit, or have more digits than"
        " their currency's minor unit and would need rounding",
    )
    for table, column, new, old in AMOUNTS:
        op.alter_column(table, column, type_=new, existing_type=old, schema="orders")


def downgrade() -> None:
    _refuse_rows("amount <> round(amount, 2)", "some amounts have more than 2 decimal places")
    for table, column, new, old in AMOUNTS:
        op.alter_column(table, column, type_=old, existing_type=new, schema="orders")
