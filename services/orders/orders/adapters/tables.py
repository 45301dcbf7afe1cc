"""SQLAlchemy Core tables of schema ``orders`` (the migrations create them)."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="orders")

# Amounts are stored as the amounts themselves, in a NUMERIC whose scale (4) holds every
# ISO 4217 minor unit (0 to 4 digits) exactly; common.money.Money reads one back at its
# currency's exponent and refuses, never rounds, a value that does not fit it. Integer
# minor units would make a stored number mean nothing without the exponent table of the
# day it was written, and ISO amends exponents now and then.

products = Table(
    "products",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit_price", Numeric(16, 4), nullable=False),
    Column("currency", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("customer_email", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("rejection_reason", Text),
    Column("cancellation_reason", Text),
    Column("total", Numeric(18, 4), nullable=False),
    Column("currency", Text, nullable=False),
    Column("shipping_address", JSONB, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("idempotency_key", Text),
    Column("request_hash", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", Uuid, ForeignKey(orders.c.order_id), primary_key=True),
    Column("line_no", SmallInteger, primary_key=True),
    Column("sku", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(16, 4), nullable=False),
    Column("line_total", Numeric(18, 4), nullable=False),
)
