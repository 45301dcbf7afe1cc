"""``orderflow local``'s database: its functions commit with synchronous_commit off,
a dev-suite choice scoped to the functions' roles in the suite's own database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from orderflow.grants import FUNCTION_ROLES, url_for_role
from orderflow.local import relax_commit_durability
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.db


def _setting(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW synchronous_commit")).scalar_one())
    finally:
        engine.dispose()


def test_the_functions_roles_commit_without_waiting_for_the_flush(database_url: str) -> None:
    with fresh_database(database_url) as url:
        assert relax_commit_durability(url) is None
        for role in sorted(set(FUNCTION_ROLES.values())):
            assert _setting(url_for_role(url, role)) == "off", role
        assert _setting(url) == "on"  # the administrator's sessions keep the server's setting
    # Another database on the same server: its roles' sessions are untouched.
    assert _setting(url_for_role(database_url, "orders")) == "on"
