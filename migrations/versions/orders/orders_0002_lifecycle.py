"""orders: the whole life of an order (shipped, delivered, cancelled)

Revision ID: orders_0002
Revises: orders_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0002"
down_revision = "orders_0001"
branch_labels = None
depends_on = None

STATUSES = ("PENDING", "CONFIRMED", "SHIPPING", "SHIPPED", "DELIVERED", "REJECTED", "CANCELLING", "CANCELLED")


def upgrade() -> None:
    op.add_column("orders", sa.Column("cancellation_reason", sa.Text), schema="orders")
    op.drop_constraint("orders_status_known", "orders", schema="orders")
    op.create_check_constraint(
        "orders_status_known",
        "orders",
        "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
        schema="orders",
    )


def downgrade() -> None:
    op.drop_constraint("orders_status_known", "orders", schema="orders")
    op.create_check_constraint(
        "orders_status_known",
        "orders",
        "status IN ('PENDING', 'CONFIRMED', 'SHIPPING', 'REJECTED')",
        schema="orders",
    )
    op.drop_column("orders", "cancellation_reason", schema="orders")
