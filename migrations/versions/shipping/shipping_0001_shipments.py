"""shipping: one shipment per reserved order

Revision ID: shipping_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "shipping_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("shipment_id", sa.Uuid, primary_key=True),
        # One shipment per order, however often InventoryReserved arrives for it.
        sa.Column("order_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("items", postgresql.JSONB, nullable=False),
        sa.Column("shipping_address", postgresql.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('REQUESTED')", name="shipments_status_known"),
        schema="shipping",
    )


def downgrade() -> None:
    op.drop_table("shipments", schema="shipping")
