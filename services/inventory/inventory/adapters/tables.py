"""SQLAlchemy Core tables of schema ``inventory`` (the migrations create them)."""

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, Table, Text, Uuid, func

metadata = MetaData(schema="inventory")

stock = Table(
    "stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

order_outcomes = Table(
    "order_outcomes",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("outcome", Text, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

settlements = Table(
    "settlements",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("settlement", Text, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", Uuid, ForeignKey(order_outcomes.c.order_id), primary_key=True),
    Column("sku", Text, primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
