"""shipping: cancellations, including of a shipment never requested

Revision ID: shipping_0003
Revises: shipping_0002
"""

from alembic import op

revision = "shipping_0003"
down_revision = "shipping_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A cancellation that arrives before InventoryReserved records a CANCELLED row with
    # no items or address: the unique order_id then makes a late InventoryReserved (or
    # a concurrent one, which waits on the index) create no shipment.
    op.alter_column("shipments", "items", nullable=True, schema="shipping")
    op.alter_column("shipments", "shipping_address", nullable=True, schema="shipping")
    op.create_check_constraint(
        "shipments_requested_has_goods",
        "shipments",
        "status = 'CANCELLED' OR (items IS NOT NULL AND shipping_address IS NOT NULL)",
        schema="shipping",
    )
    op.create_check_constraint(
        "shipments_cancellation_recorded",
        "shipments",
        "status <> 'CANCELLED' OR (cancelled_at IS NOT NULL AND dispatched_at IS NULL)",
        schema="shipping",
    )


def downgrade() -> None:
    op.drop_constraint("shipments_cancellation_recorded", "shipments", schema="shipping")
    op.drop_constraint("shipments_requested_has_goods", "shipments", schema="shipping")
    op.execute("DELETE FROM shipping.shipments WHERE items IS NULL OR shipping_address IS NULL")
    op.alter_column("shipments", "shipping_address", nullable=False, schema="shipping")
    op.alter_column("shipments", "items", nullable=False, schema="shipping")
