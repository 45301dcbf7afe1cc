"""inventory: how each reservation ended (consumed by a dispatch, or released)

Revision ID: inventory_0002
Revises: inventory_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory_0002"
down_revision = "inventory_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One end per order, whatever events arrive for it and in whatever order: the
    # primary key makes a concurrent twin (or a racing release) wait, then lose.
    op.create_table(
        "settlements",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("settlement", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("settlement IN ('CONSUMED', 'RELEASED')", name="settlements_settlement_known"),
        schema="inventory",
    )


def downgrade() -> None:
    op.drop_table("settlements", schema="inventory")
