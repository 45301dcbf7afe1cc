"""notifications: one email of each kind per order, and each order's recipient

Revision ID: notifications_0002
Revises: notifications_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0002"
down_revision = "notifications_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "emails",
        sa.Column("kind", sa.Text, nullable=False, server_default="CONFIRMATION"),
        schema="notifications",
    )
    op.create_check_constraint(
        "emails_kind_known",
        "emails",
        "kind IN ('CONFIRMATION', 'DISPATCH', 'CANCELLATION', 'REJECTION')",
        schema="notifications",
    )
    # One email of each kind per order: the primary key is what makes each happen once.
    op.drop_constraint("emails_pkey", "emails", schema="notifications")
    op.create_primary_key("emails_pkey", "emails", ["order_id", "kind"], schema="notifications")
    # Where an order's later emails go: learnt from its OrderCreated (the only event
    # that carries the address), so no other service's data is needed.
    op.create_table(
        "recipients",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="notifications",
    )


def downgrade() -> None:
    op.drop_table("recipients", schema="notifications")
    op.execute("DELETE FROM notifications.emails WHERE kind <> 'CONFIRMATION'")
    op.drop_constraint("emails_pkey", "emails", schema="notifications")
    op.create_primary_key("emails_pkey", "emails", ["order_id"], schema="notifications")
    op.drop_constraint("emails_kind_known", "emails", schema="notifications")
    op.drop_column("emails", "kind", schema="notifications")
