"""Bad requests through OrdersApiFunction's real handler: the contract's status and
error shape every time, and never a 500 (no client input ever produces one)."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support import jwks as jwks_support

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
ORDER: dict[str, Any] = json.loads((ROOT / "tests/fixtures/place_order.json").read_text())
PRODUCT = {"name": "Widget", "unitPrice": "12.50", "currency": "USD"}


def order(**changes: Any) -> dict[str, Any]:
    """The fixture order with some top-level fields changed (``None`` removes one)."""
    body = copy.deepcopy(ORDER)
    for name, value in changes.items():
        if value is None:
            body.pop(name)
        else:
            body[name] = value
    return body


def address(**changes: Any) -> dict[str, Any]:
    shipping = dict(ORDER["shippingAddress"])
    for name, value in changes.items():
        if value is None:
            shipping.pop(name)
        else:
            shipping[name] = value
    return order(shippingAddress=shipping)


def item(**changes: Any) -> dict[str, Any]:
    """The fixture order with its first item changed."""
    body = copy.deepcopy(ORDER)
    body["items"][0].update(changes)
    return body


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "customer-1",
        "email": "ada@example.com",
        "iss": jwks_support.ISSUER,
        "aud": jwks_support.AUDIENCE,
        "iat": now,
        "exp": now + 3600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# Tokens: each a function of the ``mint`` fixture. ``None`` means no Authorization header.
Token = Callable[[Any], "str | None"]
CUSTOMER: Token = lambda mint: mint()  # noqa: E731
ADMIN: Token = lambda mint: mint(sub="admin-1", scope="admin")  # noqa: E731


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str
    body: Any = None  # JSON-encoded unless ``raw`` is set
    raw: str | bytes | None = None  # sent as is (bytes: base64, as API Gateway does)
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    token: Token = CUSTOMER
    fields: list[str] | None = None  # exactly these fields named in error.details


V, U, F, N = "VALIDATION_FAILED", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND"

CASES = [
    # 400: not JSON
    Case("bad-json", "POST", "/orders", 400, "INVALID_JSON", raw='{"items": [}'),
    Case("empty-body", "POST", "/orders", 400, "INVALID_JSON", raw=""),
    Case("no-body", "POST", "/orders", 400, "INVALID_JSON"),
    Case("not-utf8", "POST", "/orders", 400, "INVALID_JSON", raw=b"\xff\xfe{}"),
    Case("bad-json-put", "PUT", "/products/SKU-1", 400, "INVALID_JSON", raw="name=x", token=ADMIN),
    Case("deeply-nested-json", "POST", "/orders", 400, "INVALID_JSON", raw="[" * 20_000),
    # 422: valid JSON, invalid body; each bad field named
    Case("json-array", "POST", "/orders", 422, V, body=[ORDER], fields=["body"]),
    Case("json-string", "POST", "/orders", 422, V, body="order", fields=["body"]),
    Case("json-null", "POST", "/orders", 422, V, raw="null", fields=["body"]),
    Case("missing-items", "POST", "/orders", 422, V, body=order(items=None), fields=["items"]),
    Case("zero-items", "POST", "/orders", 422, V, body=order(items=[]), fields=["items"]),
    Case(
        "51-items",
        "POST",
        "/orders",
        422,
        V,
        fields=["items"],
        body=order(items=[{"sku": f"SKU-{n}", "quantity": 1} for n in range(51)]),
    ),
    Case(
        "duplicate-skus",
        "POST",
        "/orders",
        422,
        V,
        fields=["items"],
        body=order(items=[{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-1", "quantity": 2}]),
    ),
    Case("items-not-a-list", "POST", "/orders", 422, V, body=order(items={"sku": "SKU-1"}), fields=["items"]),
    Case("quantity-0", "POST", "/orders", 422, V, body=item(quantity=0), fields=["items[0].quantity"]),
    Case("quantity-1001", "POST", "/orders", 422, V, body=item(quantity=1001), fields=["items[0].quantity"]),
    Case("quantity-string", "POST", "/orders", 422, V, body=item(quantity="2"), fields=["items[0].quantity"]),
    Case("quantity-float", "POST", "/orders", 422, V, body=item(quantity=1.5), fields=["items[0].quantity"]),
    Case("quantity-bool", "POST", "/orders", 422, V, body=item(quantity=True), fields=["items[0].quantity"]),
    Case(
        "quantity-huge", "POST", "/orders", 422, V, body=item(quantity=10**30), fields=["items[0].quantity"]
    ),
    Case(
        "quantity-missing",
        "POST",
        "/orders",
        422,
        V,
        body=order(items=[{"sku": "SKU-1"}]),
        fields=["items[0].quantity"],
    ),
    Case("sku-empty", "POST", "/orders", 422, V, body=item(sku=""), fields=["items[0].sku"]),
    Case(
        "sku-bad-characters", "POST", "/orders", 422, V, body=item(sku="SKU 1; DROP"), fields=["items[0].sku"]
    ),
    Case("item-unknown-field", "POST", "/orders", 422, V, body=item(price="0.01"), fields=["items[0].price"]),
    Case(
        "country-unknown",
        "POST",
        "/orders",
        422,
        V,
        body=address(country="ZZ"),
        fields=["shippingAddress.country"],
    ),
    Case(
        "country-lowercase",
        "POST",
        "/orders",
        422,
        V,
        body=address(country="gb"),
        fields=["shippingAddress.country"],
    ),
    Case(
        "country-alpha3",
        "POST",
        "/orders",
        422,
        V,
        body=address(country="GBR"),
        fields=["shippingAddress.country"],
    ),
    Case(
        "missing-address",
        "POST",
        "/orders",
        422,
        V,
        body=order(shippingAddress=None),
        fields=["shippingAddress"],
    ),
    Case(
        "missing-address-fields",
        "POST",
        "/orders",
        422,
        V,
        body=address(name=None, city=None, postalCode=None),
        fields=["shippingAddress.name", "shippingAddress.city", "shippingAddress.postalCode"],
    ),
    Case(
        "blank-address-line1",
        "POST",
        "/orders",
        422,
        V,
        body=address(line1=""),
        fields=["shippingAddress.line1"],
    ),
    Case(
        "address-line-too-long",
        "POST",
        "/orders",
        422,
        V,
        body=address(line1="x" * 201),
        fields=["shippingAddress.line1"],
    ),
    Case(
        "nul-in-address",
        "POST",
        "/orders",
        422,
        V,
        body=address(name="Ada\u0000Lovelace"),
        fields=["shippingAddress.name"],
    ),
    Case(
        "several-bad-fields",
        "POST",
        "/orders",
        422,
        V,
        body={
            "items": [{"sku": "SKU-1", "quantity": 0}],
            "shippingAddress": {**ORDER["shippingAddress"], "country": "ZZ"},
        },
        fields=["items[0].quantity", "shippingAddress.country"],
    ),
    Case("unknown-top-level-field", "POST", "/orders", 422, V, body=order(total="0.01"), fields=["total"]),
    Case(
        "unknown-sku",
        "POST",
        "/orders",
        422,
        "UNKNOWN_SKU",
        fields=["items[1].sku"],
        body=order(items=[{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-404", "quantity": 1}]),
    ),
    Case(
        "idempotency-key-too-long",
        "POST",
        "/orders",
        422,
        V,
        body=ORDER,
        headers={"Idempotency-Key": "k" * 129},
        fields=["Idempotency-Key"],
    ),
    Case(
        "idempotency-key-with-nul",
        "POST",
        "/orders",
        422,
        V,
        body=ORDER,
        headers={"Idempotency-Key": "k\x00"},
        fields=["Idempotency-Key"],
    ),
    Case(
        "lone-surrogate-in-address",
        "POST",
        "/orders",
        422,
        V,
        raw=json.dumps(address(city="\ud800")),
        fields=["shippingAddress.city"],
    ),
    Case(
        "token-without-email",
        "POST",
        "/orders",
        422,
        V,
        body=ORDER,
        token=lambda mint: mint(email=None),
        fields=["token.email"],
    ),
    # 401: no token, or one we must not trust
    Case("no-token", "GET", "/orders", 401, U, token=lambda mint: None),
    Case("no-token-post", "POST", "/orders", 401, U, body=ORDER, token=lambda mint: None),
    Case(
        "basic-auth",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: None,
        headers={"Authorization": "Basic YWRhOnB3"},
    ),
    Case(
        "bearer-without-token",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: None,
        headers={"Authorization": "Bearer "},
    ),
    Case("malformed-token", "GET", "/orders", 401, U, token=lambda mint: "not.a.jwt"),
    Case("garbage-token", "GET", "/orders", 401, U, token=lambda mint: "x" * 40),
    Case("expired-token", "GET", "/orders", 401, U, token=lambda mint: mint(expires_in=-60)),
    Case(
        "token-without-exp",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: jwt.encode(
            claims(exp=None), mint.keys["k1"], algorithm="RS256", headers={"kid": "k1"}
        ),
    ),
    Case(
        "token-without-sub",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: jwt.encode(
            claims(sub=None), mint.keys["k1"], algorithm="RS256", headers={"kid": "k1"}
        ),
    ),
    Case(
        "token-signed-by-another-key",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: mint(key=jwks_support.new_key()),
    ),
    Case(
        "token-with-unknown-kid",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: mint(kid="k-unknown", key=jwks_support.new_key()),
    ),
    Case("wrong-audience", "GET", "/orders", 401, U, token=lambda mint: mint(audience="other-api")),
    Case("wrong-issuer", "GET", "/orders", 401, U, token=lambda mint: mint(issuer="https://evil.example")),
    Case(
        "alg-none",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: jwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"}),
    ),
    Case(
        "alg-hs256",
        "GET",
        "/orders",
        401,
        U,
        token=lambda mint: jwt.encode(
            claims(), "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": "k1"}
        ),
    ),
    Case("tampered-payload", "GET", "/orders", 401, U, token=lambda mint: _tampered(mint())),
    # 403: admin route, customer token
    Case("put-product-as-customer", "PUT", "/products/SKU-1", 403, F, body=PRODUCT),
    Case(
        "put-product-with-other-scopes",
        "PUT",
        "/products/SKU-1",
        403,
        F,
        body=PRODUCT,
        token=lambda mint: mint(scope="openid profile administrator"),
    ),
    # 404: unknown, someone else's, malformed
    Case(
        "someone-elses-order", "GET", "/orders/{order_id}", 404, N, token=lambda mint: mint(sub="customer-2")
    ),
    Case("unknown-order", "GET", "/orders/6f1c1d3e-0000-4000-8000-000000000000", 404, N),
    Case("malformed-order-id", "GET", "/orders/not-a-uuid", 404, N),
    Case("sql-ish-order-id", "GET", "/orders/1%27%20OR%20%271%27=%271", 404, N),
    Case("unknown-route", "GET", "/nowhere", 404, N),
    Case("unknown-method", "DELETE", "/orders", 404, N),
    # 409: the key reused with another body
    Case(
        "idempotency-key-reused",
        "POST",
        "/orders",
        409,
        "IDEMPOTENCY_KEY_REUSED",
        body=item(quantity=7),
        headers={"Idempotency-Key": "key-1"},
    ),
    # 413: over 64 KiB, whatever the encoding
    Case(
        "body-over-64k",
        "POST",
        "/orders",
        413,
        "PAYLOAD_TOO_LARGE",
        raw=json.dumps({**ORDER, "pad": "x" * 65_536}),
    ),
    Case(
        "base64-body-over-64k",
        "POST",
        "/orders",
        413,
        "PAYLOAD_TOO_LARGE",
        raw=json.dumps({**ORDER, "pad": "x" * 65_536}).encode(),
    ),
    Case("huge-body", "PUT", "/products/SKU-1", 413, "PAYLOAD_TOO_LARGE", raw="[" * 1_000_000, token=ADMIN),
    # 422: the product catalog
    Case(
        "price-float",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "unitPrice": 12.5},
        token=ADMIN,
        fields=["unitPrice"],
    ),
    Case(
        "price-one-place",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "unitPrice": "12.5"},
        token=ADMIN,
        fields=["unitPrice"],
    ),
    Case(
        "price-negative",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "unitPrice": "-1.00"},
        token=ADMIN,
        fields=["unitPrice"],
    ),
    Case(
        "price-too-high",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "unitPrice": "1000000.01"},
        token=ADMIN,
        fields=["unitPrice"],
    ),
    Case(
        "price-int",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "unitPrice": 12},
        token=ADMIN,
        fields=["unitPrice"],
    ),
    Case(
        "currency-lowercase",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "currency": "usd"},
        token=ADMIN,
        fields=["currency"],
    ),
    Case(
        "product-missing-name",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={"unitPrice": "1.00", "currency": "USD"},
        token=ADMIN,
        fields=["name"],
    ),
    Case(
        "nul-in-product-name",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "name": "a\u0000b"},
        token=ADMIN,
        fields=["name"],
    ),
    Case(
        "product-unknown-field",
        "PUT",
        "/products/SKU-1",
        422,
        V,
        body={**PRODUCT, "stock": 3},
        token=ADMIN,
        fields=["stock"],
    ),
    Case(
        "bad-sku-in-path", "PUT", "/products/" + "S" * 65, 422, V, body=PRODUCT, token=ADMIN, fields=["sku"]
    ),
    # 422: list parameters
    Case("limit-0", "GET", "/orders", 422, V, query="limit=0", fields=["limit"]),
    Case("limit-101", "GET", "/orders", 422, V, query="limit=101", fields=["limit"]),
    Case("limit-abc", "GET", "/orders", 422, V, query="limit=abc", fields=["limit"]),
    Case("limit-negative", "GET", "/orders", 422, V, query="limit=-1", fields=["limit"]),
    Case("limit-superscript-digit", "GET", "/orders", 422, V, query="limit=%C2%B2", fields=["limit"]),
    Case("limit-repeated", "GET", "/orders", 422, V, query="limit=1&limit=2", fields=["limit"]),
    # An empty value is no integer, as the document says (schemathesis found it accepted).
    Case("limit-empty", "GET", "/orders", 422, V, query="limit=", fields=["limit"]),
    Case("limit-empty-products", "GET", "/products", 422, V, query="limit=", fields=["limit"]),
    # The cancel body is optional, but a body there must be an object.
    Case("cancel-null-body", "POST", "/orders/{order_id}/cancel", 422, V, raw="null", fields=["body"]),
    Case("cancel-array-body", "POST", "/orders/{order_id}/cancel", 422, V, body=[], fields=["body"]),
    Case("cursor-garbage", "GET", "/orders", 422, V, query="cursor=garbage!", fields=["cursor"]),
    Case("cursor-not-json", "GET", "/orders", 422, V, query=f"cursor={b64('hello')}", fields=["cursor"]),
    Case(
        "cursor-wrong-shape", "GET", "/orders", 422, V, query="cursor=" + b64('{"a": 1}'), fields=["cursor"]
    ),
    Case(
        "cursor-numbers",
        "GET",
        "/orders",
        422,
        V,
        fields=["cursor"],
        query=f"cursor={b64(json.dumps(['2024-01-01T00:00:00+00:00', 123]))}",
    ),
    Case(
        "cursor-naive-time",
        "GET",
        "/orders",
        422,
        V,
        fields=["cursor"],
        query=f"cursor={b64(json.dumps(['2024-01-01T00:00:00', '6f1c1d3e-0000-4000-8000-0']))}",
    ),
    Case(
        "cursor-year-1",
        "GET",
        "/orders",
        422,
        V,
        fields=["cursor"],
        query="cursor=" + b64(json.dumps(["0001-01-01T00:00:00+14:00", str(uuid.UUID(int=1))])),
    ),
    Case(
        "cursor-deeply-nested", "GET", "/orders", 422, V, query=f"cursor={b64('[' * 5000)}", fields=["cursor"]
    ),
]


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims_ = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims_["sub"] = "customer-2"
    return f"{header}.{b64(json.dumps(claims_))}.{signature}"


@pytest.fixture
def existing_order(orders_api, catalog) -> str:
    """customer-1's order, placed with Idempotency-Key key-1."""
    placed = orders_api.post("/orders", ORDER, headers={"Idempotency-Key": "key-1"})
    assert placed.status == 201, placed.body
    return str(placed.body["orderId"])


@pytest.fixture
def minter(mint, jwks):
    mint.keys = jwks.keys  # for the cases that sign their own claims
    return mint


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request_gets_the_contracts_error(case: Case, orders_api, existing_order, minter):
    # Given an existing order (some cases refer to it) and a request that is wrong one way
    path = case.path.format(order_id=existing_order)
    token = case.token(minter)

    # When it reaches the function
    result = orders_api.call(
        case.method,
        path,
        json_body=case.body,
        body=case.raw,
        headers=case.headers,
        query=case.query,
        token=token or None,
    )

    # Then the contract's status and error, never a 500
    assert result.status == case.status, result.body
    assert_error_shape(result, case.code)
    details = result.body["error"].get("details")
    if case.fields is None:
        assert details is None or case.status == 422, details
    else:
        assert details, result.body
        assert sorted(d["field"] for d in details) == sorted(case.fields), details


def assert_error_shape(result: Any, code: str) -> None:
    assert result.headers["content-type"] == "application/json"
    assert result.headers["x-correlation-id"]
    assert result.headers["access-control-allow-origin"] == "*"
    body = result.body
    assert isinstance(body, dict), body
    assert set(body) == {"error", "requestId"}, body
    assert isinstance(body["requestId"], str) and body["requestId"]
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    for detail in error.get("details") or []:
        assert set(detail) == {"field", "message", "type"}, detail
        assert all(isinstance(v, str) and v for v in detail.values()), detail
    text = json.dumps(body).lower()
    for leak in ("traceback", "sqlalchemy", "psycopg", "pg8000", "select ", "insert "):
        assert leak not in text, body


def test_the_callers_correlation_id_comes_back_on_errors(orders_api):
    result = orders_api.post("/orders", body='{"items": [}', headers={"X-Correlation-Id": "corr-e1"})
    assert result.status == 400
    assert result.headers["x-correlation-id"] == "corr-e1"


def test_an_unusable_correlation_id_is_replaced_by_a_generated_one(orders_api):
    result = orders_api.get("/orders/not-a-uuid", headers={"X-Correlation-Id": "bad id\n" * 3})
    assert result.status == 404
    generated = result.headers["x-correlation-id"]
    assert generated and "\n" not in generated and " " not in generated


def test_a_rejected_request_stores_nothing_and_publishes_nothing(orders_api, catalog, aws, db):
    from sqlalchemy import create_engine, text

    for body in (item(quantity=0), address(country="ZZ"), order(items=[{"sku": "NOPE", "quantity": 1}])):
        assert orders_api.post("/orders", body).status == 422

    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM orders.orders")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM eventing.outbox")).scalar() == 0
    finally:
        engine.dispose()
    assert aws.drain("order-created") == []
