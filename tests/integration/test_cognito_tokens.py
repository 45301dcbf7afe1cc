"""Tokens as Cognito mints them (ID and access), signed by the test JWKS: accepted or
refused exactly as the contract's Authentication section says, and never a 500."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.auth import InvalidToken, TokenVerifier
from tests.support import jwks as jwks_support
from tests.support.api import HttpClient

ROOT = Path(__file__).resolve().parents[2]
ORDER: dict[str, Any] = json.loads((ROOT / "tests/fixtures/place_order.json").read_text())

ID = jwks_support.cognito_id_claims
ACCESS = jwks_support.cognito_access_claims


def without(claims: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in names}


@pytest.fixture
def sign(jwks: jwks_support.JwksServer) -> Callable[[dict[str, Any]], str]:
    return lambda claims: jwks_support.sign(jwks.keys["k1"], "k1", claims)


@pytest.fixture
def verifier(jwks: jwks_support.JwksServer) -> TokenVerifier:
    return TokenVerifier(
        jwks.url,
        jwks_support.ISSUER,
        jwks_support.AUDIENCE,
        admin_scope="orderflow/admin",
        admin_group="admin",
    )


# -- the verifier alone ------------------------------------------------------------


def test_a_cognito_id_token_gives_its_verified_email(verifier, sign):
    who = verifier.verify(sign(ID(sub="ada", email="ada@example.com")))
    assert (who.subject, who.email, who.is_admin) == ("ada", "ada@example.com", False)


def test_a_cognito_access_token_is_accepted_by_client_id_without_an_email(verifier, sign):
    claims = ACCESS(sub="ada")
    assert "aud" not in claims and "email" not in claims
    who = verifier.verify(sign(claims))
    assert (who.subject, who.email, who.is_admin) == ("ada", None, False)
    assert who.scopes == {"openid", "email"}


def test_admin_by_a_resource_server_scope(verifier, sign):
    assert verifier.verify(sign(ACCESS(scope="openid orderflow/admin"))).is_admin
    # the default name alone is not the configured scope
    assert not verifier.verify(sign(ACCESS(scope="admin"))).is_admin


def test_admin_by_group_in_an_id_token_and_an_access_token(verifier, sign):
    assert verifier.verify(sign(ID(**{"cognito:groups": ["staff", "admin"]}))).is_admin
    assert verifier.verify(sign(ACCESS(**{"cognito:groups": ["admin"]}))).is_admin
    assert not verifier.verify(sign(ID(**{"cognito:groups": ["staff"]}))).is_admin


def test_aud_wins_over_client_id_as_in_the_http_api_authorizer(verifier, sign):
    # aud present: only aud counts, even when client_id names our app
    with pytest.raises(InvalidToken):
        verifier.verify(sign(ACCESS(aud="another-app")))
    assert verifier.verify(sign(ID(aud=["another-app", jwks_support.AUDIENCE]))).subject


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(ACCESS(client="another-app"), id="access-token-for-another-app"),
        pytest.param(ID(client="another-app"), id="id-token-for-another-app"),
        pytest.param(without(ACCESS(), "client_id"), id="neither-aud-nor-client_id"),
        pytest.param(ID(token_use="refresh"), id="token_use-refresh"),
        pytest.param(ACCESS(token_use=["access"]), id="token_use-not-a-string"),
        pytest.param(ID(sub="x" * 257), id="sub-257-characters"),
        pytest.param(ID(sub=""), id="sub-empty"),
        pytest.param(ID(sub=12345), id="sub-a-number"),
        pytest.param(ACCESS(scope=["admin"]), id="scope-a-list"),
        pytest.param(ID(**{"cognito:groups": "admin"}), id="groups-a-string"),
        pytest.param(ID(**{"cognito:groups": [1, 2]}), id="groups-not-strings"),
        pytest.param(ID(aud=[1]), id="aud-not-strings"),
        pytest.param(ID(iss="https://cognito-idp.eu-west-1.amazonaws.com/other"), id="another-pool"),
        pytest.param(without(ID(), "exp"), id="no-exp"),
        pytest.param(ID(exp="tomorrow"), id="exp-not-a-number"),
    ],
)
def test_hostile_claims_are_invalid_tokens(verifier, sign, claims):
    with pytest.raises(InvalidToken):
        verifier.verify(sign(claims))


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(ID(email="a@"), id="email-2-characters"),
        pytest.param(ID(email="a" * 390 + "@example.com"), id="email-402-characters"),
        pytest.param(ID(email_verified=False), id="email-not-verified"),
        pytest.param(ID(email_verified="false"), id="email-verified-false-string"),
        pytest.param(ID(email=["ada@example.com"]), id="email-a-list"),
        pytest.param(ID(email="ada example.com"), id="email-not-an-address"),
        pytest.param(without(ID(), "email"), id="no-email"),
    ],
)
def test_an_unusable_email_leaves_the_caller_without_one(verifier, sign, claims):
    who = verifier.verify(sign(claims))
    assert who.email is None and who.email_problem


def test_an_email_without_email_verified_is_not_trusted(verifier, sign):
    who = verifier.verify(sign(without(ID(), "email_verified")))
    assert who.email is None
    assert who.email_problem == "the token's email is not verified (no email_verified claim)"


def test_an_issuer_configured_to_verify_emails_is_trusted_without_the_claim(jwks, sign):
    trusting = TokenVerifier(
        jwks.url, jwks_support.ISSUER, jwks_support.AUDIENCE, emails_verified_by_issuer=True
    )
    assert trusting.verify(sign(without(ID(), "email_verified"))).email == "ada@example.com"
    # ... but a token that says the address is not verified is still believed
    assert trusting.verify(sign(ID(email_verified=False))).email is None


# -- through OrdersApiFunction: 401 / 422, never 500 -----------------------------------


@pytest.fixture
def api(container: Any, settings: Any) -> HttpClient:
    """OrdersApiFunction with ADMIN_SCOPE=orderflow/admin (a Cognito resource-server scope)."""
    from common import bootstrap
    from orders.handlers.api import handler

    bootstrap.override(
        settings=settings.model_copy(update={"admin_scope": "orderflow/admin"}),
        events_client=container.events_client,
    )
    return HttpClient(handler)


PRODUCT = {"name": "Widget", "unitPrice": "12.50", "currency": "USD"}

HOSTILE_401 = [
    ("sub-300-characters", ID(sub="s" * 300)),
    ("access-token-for-another-app", ACCESS(client="another-app")),
    ("id-token-for-another-app", ID(client="another-app")),
    ("token_use-refresh", ID(token_use="refresh")),
    ("scope-an-object", ACCESS(scope={"admin": True})),
    ("groups-a-string", ID(**{"cognito:groups": "admin"})),
    ("exp-a-string", ID(exp="soon")),
]
HOSTILE_422 = [
    ("email-2-characters", ID(email="a@")),
    ("email-400-characters", ID(email="a" * 388 + "@example.com")),
    ("email_verified-false", ID(email_verified=False)),
    ("access-token-no-email", ACCESS()),
]


@pytest.mark.db
@pytest.mark.aws
@pytest.mark.parametrize("name,claims", HOSTILE_401, ids=[n for n, _ in HOSTILE_401])
def test_hostile_tokens_are_401_on_every_route(api, sign, name, claims):
    for method, path, body in [("GET", "/orders", None), ("POST", "/orders", ORDER)]:
        result = api.call(method, path, json_body=copy.deepcopy(body), token=sign(claims))
        assert result.status == 401, (name, method, result.body)
        assert result.body["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.db
@pytest.mark.aws
@pytest.mark.parametrize("name,claims", HOSTILE_422, ids=[n for n, _ in HOSTILE_422])
def test_an_unusable_email_is_422_for_an_order_and_fine_elsewhere(api, sign, name, claims):
    token = sign(claims)
    admin = sign(ACCESS(sub="admin-1", scope="orderflow/admin"))
    assert api.put("/products/SKU-1", PRODUCT, token=admin).status == 200
    placed = api.post("/orders", copy.deepcopy(ORDER), token=token)
    assert placed.status == 422, placed.body
    assert [d["field"] for d in placed.body["error"]["details"]] == ["token.email"]
    assert api.get("/orders", token=token).status == 200


@pytest.mark.db
@pytest.mark.aws
def test_an_id_token_places_an_order_and_an_access_token_reads_it(api, sign):
    admin = sign(ACCESS(sub="admin-1", scope="openid orderflow/admin"))
    for sku in {item["sku"] for item in ORDER["items"]}:
        assert api.put(f"/products/{sku}", PRODUCT, token=admin).status == 200
    placed = api.post("/orders", copy.deepcopy(ORDER), token=sign(ID(sub="ada")))
    assert placed.status == 201, placed.body
    mine = api.get(f"/orders/{placed.body['orderId']}", token=sign(ACCESS(sub="ada")))
    assert mine.status == 200 and mine.body["customerId"] == "ada"


@pytest.mark.db
@pytest.mark.aws
def test_admin_by_scope_or_group_and_403_without(api, sign):
    by_scope = sign(ACCESS(sub="admin-1", scope="openid orderflow/admin"))
    by_group = sign(ID(sub="admin-2", **{"cognito:groups": ["admin"]}))
    customer = sign(ID(sub="ada", **{"cognito:groups": ["customers"]}))
    assert api.put("/products/SKU-1", PRODUCT, token=by_scope).status == 200
    assert api.put("/products/SKU-1", PRODUCT, token=by_group).status == 200
    refused = api.put("/products/SKU-1", PRODUCT, token=customer)
    assert refused.status == 403 and refused.body["error"]["code"] == "FORBIDDEN"
    # "admin" in scope is not the configured ADMIN_SCOPE here
    assert api.put("/products/SKU-1", PRODUCT, token=sign(ACCESS(scope="admin"))).status == 403
