"""Alembic environment shared by every schema.

``orderflow migrate`` runs Alembic once per service schema, each with its own
version directory (``migrations/versions/<schema>``) and its own version table
(``<schema>.alembic_version``), so that services migrate independently.
"""

from alembic import context
from sqlalchemy import text

config = context.config
schema: str = config.attributes["schema"]
connection = config.attributes["connection"]

# Serialise concurrent migrators (two deploys, parallel test workers) per schema.
connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"orderflow:{schema}"})
connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
context.configure(
    connection=connection,
    version_table_schema=schema,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
