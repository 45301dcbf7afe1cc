"""SQLAlchemy Core tables of schema ``notifications`` (the migrations create them)."""

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="notifications")

emails = Table(
    "emails",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("claim_token", Uuid, nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("claim_expires_at", DateTime(timezone=True), nullable=False),
    Column("message_id", Text),
    Column("sent_at", DateTime(timezone=True)),
)

recipients = Table(
    "recipients",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("email", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

pending_emails = Table(
    "pending_emails",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("event", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
