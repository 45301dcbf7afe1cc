"""SQLAlchemy Core tables of schema ``shipping`` (the migrations create them)."""

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="shipping")

shipments = Table(
    "shipments",
    metadata,
    Column("shipment_id", Uuid, primary_key=True),
    Column("order_id", Uuid, nullable=False, unique=True),
    # Both null for a cancellation recorded before any shipment was requested.
    Column("items", JSONB(none_as_null=True)),
    Column("shipping_address", JSONB(none_as_null=True)),
    Column("status", Text, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("carrier", Text),
    Column("tracking_number", Text),
    Column("dispatched_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
)
