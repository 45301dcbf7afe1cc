"""The raw baseline: POST /orders with no framework, for the benchmark only.

What a careful engineer would write by hand for the same request, doing the same
work as OrdersApiFunction so that the comparison measures our layers, not a
smaller job:

* the same RS256 check (PyJWT's ``PyJWKClient`` against ``JWKS_URL``, issuer,
  audience, ``exp`` and ``sub`` required), the JWKS cached per container;
* hand-written validation of the body (no pydantic), prices from ``orders.products``;
* bare ``pg8000.native`` (no SQLAlchemy, no pool): one transaction with the
  ``orders.orders`` row (``ON CONFLICT DO NOTHING`` for the Idempotency-Key), the
  ``orders.order_items`` rows (one multi-row INSERT) and the ``eventing.outbox`` row;
* then, as our API does, publish the outbox row with boto3 ``PutEvents`` (same
  client config) under ``FOR UPDATE SKIP LOCKED`` and mark it published;
* a 201 with the order in the contract's shape, ``Location``, ``X-Correlation-Id``, CORS.

No Powertools (logger, metrics, event handler), no pydantic, no SQLAlchemy. Error
paths are kept minimal: this handler is never deployed.

``inserts_handler`` is the issue's literal raw baseline, "a handler written with bare
pg8000 doing the same inserts in one transaction": the same transaction (prices, order,
lines, outbox row) and the same 201, with nothing else: no JWT verification (it reads
``sub`` and ``email`` from the token unverified, as if an authorizer had checked it), no
validation, no ``PutEvents`` (its outbox rows stay unpublished). It is a floor that leaves
out work OrdersApiFunction must do. PyJWT and boto3 are imported where ``handler`` first
needs them, so that ``inserts_handler``'s process never loads them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native

from common.countries import ISO_3166_ALPHA2  # a frozenset of strings, no framework

if TYPE_CHECKING:
    import jwt

_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_ADDRESS = {"name": 200, "line1": 200, "line2": 200, "city": 100, "postalCode": 20, "country": 2}
_CENT = Decimal("0.01")

_db: pg8000.native.Connection | None = None
_jwks: jwt.PyJWKClient | None = None
_events: Any = None


def _connection() -> pg8000.native.Connection:
    global _db
    if _db is None:
        url = urlsplit(os.environ["DATABASE_URL"])
        query = parse_qs(url.query)
        _db = pg8000.native.Connection(
            user=unquote(url.username or "postgres"),
            password=unquote(url.password) if url.password else None,
            host=url.hostname or "localhost",
            port=url.port or 5432,
            database=url.path.lstrip("/") or None,
            unix_sock=query["unix_sock"][0] if "unix_sock" in query else None,
        )
    return _db


def _verify(headers: dict[str, str]) -> dict[str, Any] | None:
    global _jwks
    import jwt

    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    if _jwks is None:
        _jwks = jwt.PyJWKClient(os.environ["JWKS_URL"], cache_jwk_set=True, lifespan=86400, timeout=5)
    try:
        key = _jwks.get_signing_key_from_jwt(token.strip())
        claims = jwt.decode(
            token.strip(),
            key.key,
            algorithms=["RS256"],
            audience=os.environ["JWT_AUDIENCE"],
            issuer=os.environ["JWT_ISSUER"],
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except (jwt.PyJWKClientError, jwt.InvalidTokenError):
        return None
    return claims if isinstance(claims.get("sub"), str) and claims["sub"] else None


def _invalid(body: Any) -> str | None:
    """The first problem with the request body, or None."""
    if not isinstance(body, dict) or set(body) != {"items", "shippingAddress"}:
        return "body"
    items = body["items"]
    if not isinstance(items, list) or not 1 <= len(items) <= 50:
        return "items"
    for item in items:
        if not isinstance(item, dict) or set(item) != {"sku", "quantity"}:
            return "items[]"
        sku, qty = item["sku"], item["quantity"]
        if not isinstance(sku, str) or not _SKU.match(sku):
            return "items[].sku"
        if type(qty) is not int or not 1 <= qty <= 1000:
            return "items[].quantity"
    if len({i["sku"] for i in items}) != len(items):
        return "items"
    address = body["shippingAddress"]
    if not isinstance(address, dict) or not set(address) <= set(_ADDRESS):
        return "shippingAddress"
    for field, limit in _ADDRESS.items():
        value = address.get(field)
        if value is None and field == "line2":
            continue
        if not isinstance(value, str) or not 1 <= len(value) <= limit:
            return f"shippingAddress.{field}"
    if address["country"] not in ISO_3166_ALPHA2:
        return "shippingAddress.country"
    return None


def _response(status: int, payload: Any, cid: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": "application/json",
            "X-Correlation-Id": cid,
            "Access-Control-Allow-Origin": "*",
            **(extra or {}),
        },
        "body": json.dumps(payload, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, cid: str, context: Any) -> dict[str, Any]:
    return _response(
        status, {"error": {"code": code, "message": code.lower()}, "requestId": context.aws_request_id}, cid
    )


def _correlation_id(headers: dict[str, str]) -> str:
    given = headers.get("x-correlation-id")
    return given if given and _CID.match(given) else str(uuid.uuid4())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The full-work baseline: what OrdersApiFunction does, by hand."""
    headers = event.get("headers") or {}
    cid = _correlation_id(headers)
    claims = _verify(headers)
    if claims is None:
        return _error(401, "UNAUTHORIZED", cid, context)
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        return _error(400, "INVALID_JSON", cid, context)
    if _invalid(body) or not claims.get("email"):
        return _error(422, "VALIDATION_FAILED", cid, context)
    response, outbox = _insert_order(body, claims, headers.get("idempotency-key"), cid, context)
    if outbox is not None:
        _publish(_connection(), *outbox)
    return response


def inserts_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The inserts-only baseline: the same transaction and response, nothing else."""
    headers = event.get("headers") or {}
    cid = _correlation_id(headers)
    token = (headers.get("authorization") or "").partition(" ")[2]
    payload = token.split(".")[1] if token.count(".") == 2 else ""
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) or b"{}")
    body = json.loads(event.get("body") or "")
    response, _ = _insert_order(body, claims, headers.get("idempotency-key"), cid, context)
    return response


def _insert_order(
    body: dict[str, Any], claims: dict[str, Any], key: str | None, cid: str, context: Any
) -> tuple[dict[str, Any], tuple[int, str] | None]:
    """One transaction: prices, the order, its lines and its outbox row. Returns the
    response and, on a 201, the outbox row (id, detail) to publish."""
    address = {k: body["shippingAddress"].get(k) for k in _ADDRESS}
    canonical = json.dumps({"items": body["items"], "shippingAddress": address}, separators=(",", ":"))
    request_hash = hashlib.sha256(canonical.encode()).hexdigest()

    db = _connection()
    skus = [i["sku"] for i in body["items"]]
    order_id, event_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    db.run("BEGIN")
    try:
        prices = {
            sku: (price, currency)
            for sku, price, currency in db.run(
                "SELECT sku, unit_price, currency FROM orders.products WHERE sku = ANY(:skus)", skus=skus
            )
        }
        if len(prices) != len(skus) or len({c for _, c in prices.values()}) != 1:
            db.run("ROLLBACK")
            return _error(422, "UNKNOWN_SKU", cid, context), None
        currency = next(iter(prices.values()))[1]
        lines = [(i["sku"], i["quantity"], prices[i["sku"]][0]) for i in body["items"]]
        total = sum((price * qty for _, qty, price in lines), Decimal("0.00"))
        inserted = db.run(
            "INSERT INTO orders.orders (order_id, customer_id, customer_email, status, total, currency,"
            " shipping_address, correlation_id, idempotency_key, request_hash, created_at, updated_at)"
            " VALUES (:id, :customer, :email, 'PENDING', :total, :currency, CAST(:address AS jsonb),"
            " :cid, :key, :hash, :now, :now) ON CONFLICT DO NOTHING RETURNING order_id",
            id=order_id,
            customer=claims["sub"],
            email=claims["email"],
            total=total,
            currency=currency,
            address=json.dumps(address),
            cid=cid,
            key=key,
            hash=request_hash,
            now=now,
        )
        if not inserted:
            # An Idempotency-Key seen before: the benchmark never sends one twice.
            db.run("ROLLBACK")
            return _error(409, "IDEMPOTENCY_KEY_REUSED", cid, context), None
        values, params = [], {"id": order_id}
        for n, (sku, qty, price) in enumerate(lines, start=1):
            values.append(f"(:id, {n}, :s{n}, :q{n}, :p{n}, :t{n})")
            params.update({f"s{n}": sku, f"q{n}": qty, f"p{n}": price, f"t{n}": price * qty})
        db.run(
            "INSERT INTO orders.order_items (order_id, line_no, sku, quantity, unit_price, line_total)"
            " VALUES " + ", ".join(values),
            **params,
        )
        items = [{"sku": s, "quantity": q, "unitPrice": f"{p:.2f}"} for s, q, p in lines]
        detail = {
            "orderId": str(order_id),
            "customerId": claims["sub"],
            "customerEmail": claims["email"],
            "items": items,
            "total": f"{total:.2f}",
            "currency": currency,
            "shippingAddress": address,
            "metadata": {
                "eventId": str(event_id),
                "correlationId": cid,
                "causationId": None,
                "timestamp": _iso(now),
                "version": "1.0",
            },
        }
        detail_json = json.dumps(detail, separators=(",", ":"))
        outbox_id = db.run(
            "INSERT INTO eventing.outbox (event_id, source, detail_type, detail, correlation_id)"
            " VALUES (:eid, 'orders.service', 'OrderCreated', CAST(:detail AS jsonb), :cid) RETURNING id",
            eid=event_id,
            detail=detail_json,
            cid=cid,
        )[0][0]
        db.run("COMMIT")
    except Exception:
        db.run("ROLLBACK")
        raise

    order = {
        "orderId": str(order_id),
        "customerId": claims["sub"],
        "status": "PENDING",
        "items": [{**i, "lineTotal": f"{p * q:.2f}"} for i, (_, q, p) in zip(items, lines, strict=True)],
        "total": f"{total:.2f}",
        "currency": currency,
        "shippingAddress": address,
        "createdAt": _iso(now),
        "updatedAt": _iso(now),
        "correlationId": cid,
    }
    return _response(201, order, cid, {"Location": f"/orders/{order_id}"}), (outbox_id, detail_json)


def _publish(db: pg8000.native.Connection, outbox_id: int, detail_json: str) -> None:
    """Publish the row just committed; on failure it stays unsent for the relay."""
    global _events
    if _events is None:
        import boto3
        from botocore.config import Config

        # The same client config as common.bootstrap: one attempt, 0.5 s connect, 1 s read.
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=0.5, read_timeout=1.0
        )
        _events = boto3.client("events", region_name=os.environ.get("AWS_REGION"), config=config)
    db.run("BEGIN")
    try:
        claimed = db.run(
            "SELECT id FROM eventing.outbox WHERE id = :id AND published_at IS NULL FOR UPDATE SKIP LOCKED",
            id=outbox_id,
        )
        if claimed:
            result = _events.put_events(
                Entries=[
                    {
                        "EventBusName": os.environ["EVENT_BUS_NAME"],
                        "Source": "orders.service",
                        "DetailType": "OrderCreated",
                        "Detail": detail_json,
                    }
                ]
            )
            if not result.get("FailedEntryCount"):
                db.run("UPDATE eventing.outbox SET published_at = now() WHERE id = :id", id=outbox_id)
        db.run("COMMIT")
    except Exception:
        db.run("ROLLBACK")
