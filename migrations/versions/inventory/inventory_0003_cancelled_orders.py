"""inventory: an order cancelled before its OrderCreated was handled

Revision ID: inventory_0003
Revises: inventory_0002
"""

from alembic import op

revision = "inventory_0003"
down_revision = "inventory_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # OrderCancelled can arrive before OrderCreated: its CANCELLED outcome takes the
    # order's one decision, so the late OrderCreated reserves nothing.
    op.drop_constraint("order_outcomes_outcome_known", "order_outcomes", schema="inventory")
    op.create_check_constraint(
        "order_outcomes_outcome_known",
        "order_outcomes",
        "outcome IN ('RESERVED', 'FAILED', 'CANCELLED')",
        schema="inventory",
    )


def downgrade() -> None:
    op.execute("DELETE FROM inventory.order_outcomes WHERE outcome = 'CANCELLED'")
    op.drop_constraint("order_outcomes_outcome_known", "order_outcomes", schema="inventory")
    op.create_check_constraint(
        "order_outcomes_outcome_known",
        "order_outcomes",
        "outcome IN ('RESERVED', 'FAILED')",
        schema="inventory",
    )
