"""orders: product catalog, orders and their lines

Revision ID: orders_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "orders_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("unit_price >= 0", name="products_price_not_negative"),
        schema="orders",
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("customer_email", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rejection_reason", sa.Text),
        sa.Column("total", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("shipping_address", postgresql.JSONB, nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("request_hash", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'CONFIRMED', 'SHIPPING', 'REJECTED')", name="orders_status_known"
        ),
        # One order per customer and Idempotency-Key, whatever the concurrency.
        sa.UniqueConstraint("customer_id", "idempotency_key", name="orders_idempotency_key"),
        schema="orders",
    )
    # GET /orders: a customer's orders, newest first, keyset-paginated.
    op.create_index(
        "orders_customer_recent_idx",
        "orders",
        ["customer_id", sa.text("created_at DESC"), sa.text("order_id DESC")],
        schema="orders",
    )
    op.create_table(
        "order_items",
        sa.Column(
            "order_id", sa.Uuid, sa.ForeignKey("orders.orders.order_id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("line_no", sa.SmallInteger, primary_key=True),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
        sa.Column("line_total", sa.Numeric(14, 2), nullable=False),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_table("order_items", schema="orders")
    op.drop_table("orders", schema="orders")
    op.drop_table("products", schema="orders")
