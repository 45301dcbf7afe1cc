"""The HTTP functions' trust edges: an issuer whose keys cannot be fetched (503, in the
contract's error body, within the function's time budget), the CORS origin from the
settings, and a function that refuses to start with no way to recognise an admin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from common import bootstrap
from common.settings import Settings
from orderflow.template import load
from tests.support import jwks as jwks_support
from tests.support.api import HttpClient
from tests.support.network import black_hole, refusing

# One authenticated read per HTTP function: the 503 comes before any database.
ROUTES = [
    ("orders.handlers.api", "/orders"),
    ("inventory.handlers.api", "/inventory/SKU-1"),
    ("shipping.handlers.api", "/shipments/5b6f1c8e-1f0e-4d7e-9f3a-3d1c2b0a9e8f"),
]
# The HTTP functions' timeout in template.yaml (Globals): the invocation's whole budget.
FUNCTION_TIMEOUT_S = float(load()["Globals"]["Function"]["Timeout"])


def settings(jwks_url: str, **more: Any) -> Settings:
    return Settings(
        JWKS_URL=jwks_url, JWT_ISSUER=jwks_support.ISSUER, JWT_AUDIENCE=jwks_support.AUDIENCE, **more
    )


@pytest.fixture
def token() -> str:
    return jwks_support.mint(jwks_support.new_key(), "k1", scope="admin")


@pytest.fixture(autouse=True)
def fresh_container() -> Iterator[None]:
    yield
    bootstrap.override()


def handler_of(module: str) -> Any:
    import importlib

    return importlib.import_module(module).handler


# Every function with a refused connection; one waits out a server that never answers
# (the others share its middleware and verifier).
OUTAGES = [(refusing, module, path) for module, path in ROUTES] + [(black_hole, *ROUTES[0])]


@pytest.mark.parametrize(
    ("outage", "module", "path"), OUTAGES, ids=[f"{o.__name__}-{m.split('.')[0]}" for o, m, _ in OUTAGES]
)
def test_an_issuer_whose_keys_cannot_be_fetched_is_a_503(
    outage: Any, module: str, path: str, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    place: AbstractContextManager[str] = outage()
    with place as url:
        bootstrap.override(settings=settings(f"{url}/.well-known/jwks.json"))
        started = time.monotonic()
        result = HttpClient(handler_of(module), token=token).get(path)
        took = time.monotonic() - started
    assert result.status == 503, result.body
    assert result.body["error"] == {
        "code": "SERVICE_UNAVAILABLE",
        "message": "tokens cannot be verified right now: try again later",
    }
    assert set(result.body) == {"error", "requestId"}
    assert result.headers["content-type"] == "application/json"
    assert result.headers["x-correlation-id"]
    # The key set's fetch gives up after 5 s: the invocation (15 s) still answers.
    assert took < FUNCTION_TIMEOUT_S, took
    # Counted as a 5xx: what a new version's rollout watches (<Function>ServerErrorsAlarm).
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m.get("ServerError") for m in emf] == [[1.0]], emf


def test_the_openapi_document_gives_every_route_its_503() -> None:
    import json

    from orderflow.schemas import OPENAPI

    document = json.loads(OPENAPI.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "503" in operation["responses"], (method, path)


def test_the_cors_origin_is_the_configured_one(jwks: jwks_support.JwksServer) -> None:
    bootstrap.override(settings=settings(jwks.url, CORS_ALLOW_ORIGIN="https://shop.example"))
    api = HttpClient(handler_of("orders.handlers.api"))
    # No token: a 401, and still the configured origin (on every response, errors included)
    plain = api.get("/orders", token=None)
    assert plain.status == 401
    assert plain.headers["access-control-allow-origin"] == "https://shop.example"
    from_shop = api.get("/orders", token=None, headers={"Origin": "https://shop.example"})
    assert from_shop.headers["access-control-allow-origin"] == "https://shop.example"
    assert "Idempotency-Key" in from_shop.headers["access-control-allow-headers"]
    elsewhere = api.get("/orders", token=None, headers={"Origin": "https://evil.example"})
    assert elsewhere.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-headers" not in elsewhere.headers


def test_any_origin_by_default(jwks: jwks_support.JwksServer) -> None:
    bootstrap.override(settings=settings(jwks.url))
    api = HttpClient(handler_of("orders.handlers.api"))
    assert api.get("/orders", token=None).headers["access-control-allow-origin"] == "*"
    with_origin = api.get("/orders", token=None, headers={"Origin": "https://any.example"})
    assert with_origin.headers["access-control-allow-origin"] == "*"


def _import(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "POWERTOOLS_"))}
    environ.update(POWERTOOLS_TRACE_DISABLED="true", AWS_REGION="eu-west-1", **env)
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("module", [m for m, _ in ROUTES])
def test_a_function_with_no_admin_scope_or_group_refuses_to_start(module: str) -> None:
    refused = _import(module, ADMIN_SCOPE="", ADMIN_GROUP="")
    assert refused.returncode != 0
    assert "ConfigurationError: ADMIN_SCOPE and ADMIN_GROUP are both empty" in refused.stderr
    # One of them is enough; neither set at all means the defaults (admin, admin)
    assert _import(module, ADMIN_SCOPE="", ADMIN_GROUP="ops").returncode == 0
    assert _import(module).returncode == 0


def test_an_empty_admin_scope_grants_nothing(jwks: jwks_support.JwksServer) -> None:
    bootstrap.override(settings=settings(jwks.url, ADMIN_SCOPE="", ADMIN_GROUP="ops"))
    verifier = bootstrap.container().verifier
    key = jwks.keys["k1"]
    assert not verifier.verify(jwks_support.mint(key, "k1", scope="admin")).is_admin
    assert verifier.verify(jwks_support.mint(key, "k1", **{"cognito:groups": ["ops"]})).is_admin


def test_settings_keep_an_empty_admin_scope_from_the_environment() -> None:
    assert Settings.from_env({"ADMIN_SCOPE": "", "ADMIN_GROUP": "ops"}).admin_rule() == (None, "ops")
    assert Settings.from_env({}).admin_rule() == ("admin", "admin")
    assert Settings.from_env({"EMAILS_VERIFIED_BY_ISSUER": "true"}).emails_verified_by_issuer
    assert not Settings.from_env({}).emails_verified_by_issuer
