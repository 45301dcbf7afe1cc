"""inventory: stock levels, each order's reservation decision, reserved lines

Revision ID: inventory_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("on_hand", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("on_hand >= 0", name="stock_on_hand_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
        # available = on_hand - reserved never drops below zero, whatever the code does.
        sa.CheckConstraint("reserved <= on_hand", name="stock_reserved_within_on_hand"),
        schema="inventory",
    )
    # One decision per order, whatever number of OrderCreated events (new eventIds
    # included) arrive for it: the primary key makes a concurrent twin wait, then lose.
    op.create_table(
        "order_outcomes",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("outcome IN ('RESERVED', 'FAILED')", name="order_outcomes_outcome_known"),
        schema="inventory",
    )
    op.create_table(
        "reservations",
        sa.Column(
            "order_id",
            sa.Uuid,
            sa.ForeignKey("inventory.order_outcomes.order_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("quantity > 0", name="reservations_quantity_positive"),
        schema="inventory",
    )


def downgrade() -> None:
    op.drop_table("reservations", schema="inventory")
    op.drop_table("order_outcomes", schema="inventory")
    op.drop_table("stock", schema="inventory")
