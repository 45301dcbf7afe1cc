"""``orderflow migrate``: Alembic for every service schema, one version table each."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

from orderflow import grants
from orderflow.paths import MIGRATIONS

# Order matters only for the first install: eventing holds the shared plumbing.
SCHEMAS: tuple[str, ...] = ("eventing", "orders", "inventory", "notifications", "shipping")


def _config(connection: Connection, schema: str, directory: Path = MIGRATIONS) -> Config:
    config = Config()
    config.set_main_option("script_location", str(directory))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(directory / "versions" / schema))
    config.attributes["schema"] = schema
    config.attributes["connection"] = connection
    return config


def upgrade(
    connection: Connection, schema: str, revision: str = "head", directory: Path = MIGRATIONS
) -> None:
    """Upgrade one service schema to ``revision`` (its head by default) in ``connection``'s transaction."""
    command.upgrade(_config(connection, schema, directory), revision)


def downgrade(connection: Connection, schema: str, revision: str) -> None:
    """Downgrade one service schema to ``revision`` in ``connection``'s transaction."""
    command.downgrade(_config(connection, schema), revision)


def migrate(
    target: str | Engine, schemas: tuple[str, ...] = SCHEMAS, directory: Path = MIGRATIONS
) -> list[str]:
    """Upgrade each schema to its head; returns the schemas migrated.

    ``directory``: the migrations (the migration function ships them beside its code).
    """
    if not (directory / "env.py").exists():
        raise FileNotFoundError(f"migrations not found at {directory}")
    engine = create_engine(target, hide_parameters=True) if isinstance(target, str) else target
    try:
        for schema in schemas:
            with engine.begin() as connection:
                upgrade(connection, schema, directory=directory)
        # The roles' rights last, once every schema has its tables (see orderflow.grants).
        if set(schemas) >= set(SCHEMAS):
            with engine.begin() as connection:
                grants.apply(connection)
    finally:
        if isinstance(target, str):
            engine.dispose()
    return list(schemas)
