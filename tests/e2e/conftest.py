"""End-to-end fixtures: the local suite, started as a user starts it, on free ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.local_suite import LocalSuite, running
from tests.support.postgres import fresh_database


@pytest.fixture(scope="module")
def suite(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSuite]:
    """``orderflow local`` on a database of its own on the session's PostgreSQL.

    Module-scoped and stopped (SIGTERM) at the end of the module, asserting a clean
    exit: its relay must not run on while other tests use the same server.
    """
    with fresh_database(database_url) as url:
        local = LocalSuite(tmp_path_factory.mktemp("local-suite"), database_url=url)
        with running(local):
            yield local
            code, alive = local.stop()
            assert code == 0, local.log
            assert not alive, f"left running after SIGTERM: {alive}"


@pytest.fixture
def customer(suite: LocalSuite) -> tuple[str, str]:
    """A new customer: (token, email)."""
    sub = f"e2e-{uuid.uuid4().hex[:10]}"
    email = f"{sub}@example.com"
    return suite.token(sub, email), email


@pytest.fixture
def sku() -> str:
    return f"E2E-{uuid.uuid4().hex[:8].upper()}"
