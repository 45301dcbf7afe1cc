"""shipping: dispatch and delivery of a shipment

Revision ID: shipping_0002
Revises: shipping_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "shipping_0002"
down_revision = "shipping_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shipments", sa.Column("carrier", sa.Text), schema="shipping")
    op.add_column("shipments", sa.Column("tracking_number", sa.Text), schema="shipping")
    op.add_column("shipments", sa.Column("dispatched_at", sa.DateTime(timezone=True)), schema="shipping")
    op.add_column("shipments", sa.Column("delivered_at", sa.DateTime(timezone=True)), schema="shipping")
    op.add_column("shipments", sa.Column("cancelled_at", sa.DateTime(timezone=True)), schema="shipping")
    op.drop_constraint("shipments_status_known", "shipments", schema="shipping")
    op.create_check_constraint(
        "shipments_status_known",
        "shipments",
        "status IN ('REQUESTED', 'DISPATCHED', 'DELIVERED', 'CANCELLED')",
        schema="shipping",
    )
    # What left carries how it left; what arrived had left.
    op.create_check_constraint(
        "shipments_dispatch_recorded",
        "shipments",
        "status NOT IN ('DISPATCHED', 'DELIVERED') OR "
        "(carrier IS NOT NULL AND tracking_number IS NOT NULL AND dispatched_at IS NOT NULL)",
        schema="shipping",
    )
    op.create_check_constraint(
        "shipments_delivery_recorded",
        "shipments",
        "status <> 'DELIVERED' OR delivered_at IS NOT NULL",
        schema="shipping",
    )


def downgrade() -> None:
    op.drop_constraint("shipments_delivery_recorded", "shipments", schema="shipping")
    op.drop_constraint("shipments_dispatch_recorded", "shipments", schema="shipping")
    op.drop_constraint("shipments_status_known", "shipments", schema="shipping")
    op.create_check_constraint(
        "shipments_status_known", "shipments", "status IN ('REQUESTED')", schema="shipping"
    )
    for column in ("cancelled_at", "delivered_at", "dispatched_at", "tracking_number", "carrier"):
        op.drop_column("shipments", column, schema="shipping")
