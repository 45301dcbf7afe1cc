"""notifications: one confirmation email per order, claimed before it is sent

Revision ID: notifications_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emails",
        # One row per order: the primary key is what makes the email happen once.
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        # Which invocation holds the claim, so that it touches only its own claim.
        sa.Column("claim_token", sa.Uuid, nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # After this the claiming invocation is certainly dead (past its Lambda timeout).
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('CLAIMED', 'SENT')", name="emails_status_known"),
        sa.CheckConstraint(
            "(status = 'SENT') = (message_id IS NOT NULL AND sent_at IS NOT NULL)",
            name="emails_sent_has_message_id",
        ),
        schema="notifications",
    )


def downgrade() -> None:
    op.drop_table("emails", schema="notifications")
