"""eventing: outbox leases, per-row backoff, parking, trace headers; indexes for pruning

Revision ID: eventing_0002
Revises: eventing_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "eventing_0002"
down_revision = "eventing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A relay (or the fast path) holds a row until claimed_until; no lock is kept while
    # it calls PutEvents.
    op.add_column("outbox", sa.Column("claimed_until", sa.DateTime(timezone=True)), schema="eventing")
    # Per-row backoff for entries EventBridge refused one by one.
    op.add_column(
        "outbox",
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema="eventing",
    )
    # Refused for a permanent reason: kept for an operator to requeue, never retried alone.
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True)), schema="eventing")
    op.add_column("outbox", sa.Column("parked_reason", sa.Text), schema="eventing")
    # The X-Ray trace header of the invocation that wrote the row (PutEvents' TraceHeader).
    op.add_column("outbox", sa.Column("trace_header", sa.Text), schema="eventing")
    op.create_index(
        "outbox_parked_idx",
        "outbox",
        ["id"],
        schema="eventing",
        postgresql_where=sa.text("parked_at IS NOT NULL"),
    )
    # Retention pruning walks these oldest first, in small batches.
    op.create_index(
        "outbox_published_at_idx",
        "outbox",
        ["published_at"],
        schema="eventing",
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.create_index(
        "processed_events_processed_at_idx", "processed_events", ["processed_at"], schema="eventing"
    )


def downgrade() -> None:
    op.drop_index("processed_events_processed_at_idx", "processed_events", schema="eventing")
    op.drop_index("outbox_published_at_idx", "outbox", schema="eventing")
    op.drop_index("outbox_parked_idx", "outbox", schema="eventing")
    for column in ("trace_header", "parked_reason", "parked_at", "next_attempt_at", "claimed_until"):
        op.drop_column("outbox", column, schema="eventing")
