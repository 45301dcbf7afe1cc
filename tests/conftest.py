"""Shared fixtures: a real PostgreSQL, moto's EventBridge and SQS, a JWKS, the API.

Unit tests (tests/unit) use none of these: they run on fakes, with no sockets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# Credentials for moto only; never real ones. Set before boto3 is imported anywhere.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Orderflow")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "orderflow-tests")

from tests.support import jwks as jwks_support
from tests.support.api import HttpClient
from tests.support.postgres import fresh_database, server_url, truncate_all

ORDER_CREATED_PATTERN = {"source": ["orders.service"], "detail-type": ["OrderCreated"]}


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database of this session's own on a real PostgreSQL."""
    with server_url() as base, fresh_database(base) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> str:
    """A clean database for this test (every service table truncated)."""
    truncate_all(database_url)
    return database_url


@pytest.fixture
def engine(db: str) -> Iterator[Any]:
    """A plain engine on this test's database, for the test's own queries."""
    from sqlalchemy import create_engine

    engine = create_engine(db)
    yield engine
    engine.dispose()


@pytest.fixture
def deps(db: str) -> Iterator[Any]:
    """The composition root on this test's database only (a consumer needing nothing else)."""
    from common import bootstrap
    from common.settings import Settings

    yield bootstrap.override(settings=Settings(DATABASE_URL=db))
    bootstrap.override()


@pytest.fixture(scope="session")
def jwks() -> Iterator[jwks_support.JwksServer]:
    server = jwks_support.JwksServer(keys={"k1": jwks_support.new_key()}).start()
    yield server
    server.stop()


@pytest.fixture
def mint(jwks: jwks_support.JwksServer) -> Any:
    """mint(sub=..., email=..., scope=..., ...) -> a token the API accepts."""

    def _mint(**claims: Any) -> str:
        kid = claims.pop("kid", "k1")
        key = claims.pop("key", None) or jwks.keys[kid]
        return jwks_support.mint(key, kid, **claims)

    return _mint


@pytest.fixture
def aws() -> Iterator[Any]:
    """moto, in process: a custom bus with the OrderCreated rule delivering to a queue."""
    import boto3
    from moto import mock_aws

    from tests.support.aws import make_bus

    with mock_aws():
        bus = make_bus(boto3.Session())
        bus.route("order-created", ORDER_CREATED_PATTERN)
        yield bus


@pytest.fixture
def settings(db: str, aws: Any, jwks: jwks_support.JwksServer) -> Any:
    from common.settings import Settings

    return Settings(
        DATABASE_URL=db,
        EVENT_BUS_NAME=aws.name,
        JWKS_URL=jwks.url,
        JWT_ISSUER=jwks_support.ISSUER,
        JWT_AUDIENCE=jwks_support.AUDIENCE,
        AWS_REGION="us-east-1",
        SENDER_EMAIL="orders@orderflow.test",
    )


@pytest.fixture
def container(settings: Any, aws: Any) -> Iterator[Any]:
    """The functions' composition root wired to this test's database and emulator."""
    from common import bootstrap

    deps = bootstrap.override(settings=settings, events_client=aws.events)
    yield deps
    bootstrap.override()


@pytest.fixture
def orders_api(container: Any, mint: Any) -> HttpClient:
    """OrdersApiFunction's handler, called with HTTP API v2 events as customer-1."""
    from orders.handlers.api import handler

    return HttpClient(handler, token=mint())


@pytest.fixture
def catalog(orders_api: HttpClient, mint: Any) -> dict[str, str]:
    """Two products priced in USD, put through the admin API."""
    admin = mint(sub="admin-1", scope="admin")
    prices = {"SKU-1": "12.50", "SKU-2": "3.99"}
    for sku, price in prices.items():
        result = orders_api.put(
            f"/products/{sku}", {"name": f"Product {sku}", "unitPrice": price, "currency": "USD"}, token=admin
        )
        assert result.status == 200, result.body
    return prices
