"""notifications: emails kept until the order's OrderCreated names their recipient

Revision ID: notifications_0003
Revises: notifications_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "notifications_0003"
down_revision = "notifications_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An InventoryReservationFailed, OrderCancelled or ShipmentDispatched may arrive
    # before the order's OrderCreated (the only event with the address): its email waits
    # here, one per order and kind, and goes out once OrderCreated is handled.
    op.create_table(
        "pending_emails",
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("event", JSONB, nullable=False),  # the event's detail, to render the email from
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("order_id", "kind", name="pending_emails_pkey"),
        sa.CheckConstraint(
            "kind IN ('DISPATCH', 'CANCELLATION', 'REJECTION')", name="pending_emails_kind_known"
        ),
        schema="notifications",
    )


def downgrade() -> None:
    op.drop_table("pending_emails", schema="notifications")
