"""orders: indexes for an admin's listing (every customer's orders, by status or not)

Revision ID: orders_0004
Revises: orders_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0004"
down_revision = "orders_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # GET /orders?status=... as an admin: one status's orders, newest first (finding every
    # order stuck in CANCELLING reads only those). A customer's listing, with or without a
    # status, keeps orders_customer_recent_idx.
    op.create_index(
        "orders_status_recent_idx",
        "orders",
        ["status", sa.text("created_at DESC"), sa.text("order_id DESC")],
        schema="orders",
    )
    # GET /orders as an admin with no filter: every order, newest first.
    op.create_index(
        "orders_recent_idx",
        "orders",
        [sa.text("created_at DESC"), sa.text("order_id DESC")],
        schema="orders",
    )


def downgrade() -> None:
    op.drop_index("orders_recent_idx", "orders", schema="orders")
    op.drop_index("orders_status_recent_idx", "orders", schema="orders")
