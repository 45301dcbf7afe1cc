"""OrdersApiFunction: the orders HTTP API (API Gateway HTTP API, payload 2.0).

An adapter only: parse and validate, call one use case, map the result or the
domain error to the contract's response.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, TypeAdapter

from common import http
from common.bootstrap import container
from common.db import retry_on_disconnect
from common.events import Sku
from common.http import ApiError, documented, error_doc, json_response
from common.observability import logger, metrics, tracer
from orders.adapters.repository import OrdersUnitOfWork
from orders.domain.commands import PlaceOrder, UpsertProduct
from orders.domain.model import IdempotencyKeyReused, MixedCurrencies, OrderNotFound, UnknownSkus
from orders.handlers.schemas import (
    OrderOut,
    OrderPage,
    PlaceOrderRequest,
    ProductOut,
    PutProductRequest,
)
from orders.usecases import get_order, list_orders, place_order, upsert_product

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_IDEMPOTENCY_KEY = 128
_SKU: TypeAdapter[str] = TypeAdapter(Sku)

app = http.create_app(lambda: container().verifier)


def _uow() -> OrdersUnitOfWork:
    return OrdersUnitOfWork(container().engine)


def _run(operation: Any) -> Any:
    return retry_on_disconnect(operation, engine=container().engine)


COMMON_ERRORS: dict[int, OpenAPIResponse] = {
    401: error_doc("Missing or invalid token"),
    500: error_doc("Unexpected error"),
}


@app.post(
    "/orders",
    summary="Place an order",
    responses={
        201: documented(OrderOut, "The order"),
        400: error_doc("Body is not JSON"),
        409: error_doc("Idempotency-Key reused with another body"),
        413: error_doc("Body over 64 KiB"),
        422: error_doc("Invalid body or unknown SKU"),
        **COMMON_ERRORS,
    },
)
def post_order():
    who = http.principal(app)
    request = http.parse(PlaceOrderRequest, http.body(app))
    if who.email is None:
        raise ApiError(
            422,
            "VALIDATION_FAILED",
            "the token carries no email for the confirmation",
            [{"field": "token.email", "message": "required", "type": "missing"}],
        )
    key = app.current_event.headers.get("idempotency-key")
    if key is not None and (not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or "\x00" in key):
        raise ApiError(
            422,
            "VALIDATION_FAILED",
            "the Idempotency-Key header is invalid",
            [
                {
                    "field": "Idempotency-Key",
                    "message": f"1 to {MAX_IDEMPOTENCY_KEY} characters",
                    "type": "string_length",
                }
            ],
        )
    canonical = request.model_dump_json(by_alias=True)
    command = PlaceOrder(
        customer_id=who.subject,
        customer_email=who.email,
        quantities=[(item.sku, item.quantity) for item in request.items],
        shipping_address=request.shipping_address.model_dump(mode="json", by_alias=True),
        correlation_id=http.correlation_id(app),
        request_hash=hashlib.sha256(canonical.encode()).hexdigest(),
        idempotency_key=key,
    )
    try:
        placed = _run(lambda: place_order(command, _uow()))
    except UnknownSkus as exc:
        raise ApiError(
            422,
            "UNKNOWN_SKU",
            str(exc),
            [
                {"field": f"items[{i}].sku", "message": "unknown SKU", "type": "unknown_sku"}
                for i, item in enumerate(request.items)
                if item.sku in exc.skus
            ],
        ) from None
    except MixedCurrencies as exc:
        raise ApiError(422, "MIXED_CURRENCIES", str(exc)) from None
    except IdempotencyKeyReused as exc:
        raise ApiError(409, "IDEMPOTENCY_KEY_REUSED", str(exc)) from None

    if placed.outbox_ids:
        metrics.add_metric(name="OrderPlaced", unit="Count", value=1)
        # After the commit, at once; if this fails the client still gets its 201
        # and the row waits for the relay.
        container().publish_committed(placed.outbox_ids, app.lambda_context)
    order = placed.order
    logger.info("order placed", extra={"order_id": str(order.order_id), "new": bool(placed.outbox_ids)})
    return json_response(
        201,
        OrderOut.of(order).model_dump(mode="json", by_alias=True),
        {"Location": f"/orders/{order.order_id}"},
    )


@app.get(
    "/orders/<orderId>",
    summary="Get one of your orders",
    responses={
        200: documented(OrderOut, "The order"),
        404: error_doc("Unknown order, or someone else's"),
        **COMMON_ERRORS,
    },
)
def get_one(orderId: str):
    try:
        order_id = uuid.UUID(orderId)
    except ValueError:
        raise ApiError(404, "NOT_FOUND", "no such order") from None
    try:
        order = _run(lambda: get_order(order_id, http.principal(app).subject, _uow()))
    except OrderNotFound:
        raise ApiError(404, "NOT_FOUND", "no such order") from None
    return json_response(200, OrderOut.of(order).model_dump(mode="json", by_alias=True))


@app.get(
    "/orders",
    summary="List your orders, newest first",
    responses={
        200: documented(OrderPage, "A page of orders"),
        422: error_doc("Invalid limit or cursor"),
        **COMMON_ERRORS,
    },
)
def get_many():
    params = app.current_event.query_string_parameters or {}
    limit = _parse_limit(params.get("limit"))
    after = _decode_cursor(params.get("cursor"))
    orders, next_after = _run(lambda: list_orders(http.principal(app).subject, limit, after, _uow()))
    page = OrderPage(
        orders=[OrderOut.of(o) for o in orders],
        next_cursor=_encode_cursor(next_after) if next_after else None,
    )
    return json_response(200, page.model_dump(mode="json", by_alias=True))


def _parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE
    # isdigit() alone admits "²", which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(
            422,
            "VALIDATION_FAILED",
            "limit is invalid",
            [{"field": "limit", "message": f"an integer from 1 to {MAX_PAGE}", "type": "int_range"}],
        )
    return int(raw)


def _encode_cursor(after: tuple[datetime, uuid.UUID]) -> str:
    raw = json.dumps([after[0].isoformat(), str(after[1])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not raw:
        return None
    try:
        created, order_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(created, str) or not isinstance(order_id, str):
            raise TypeError("cursor parts must be strings")  # uuid.UUID(123) raises AttributeError
        after = (datetime.fromisoformat(created), uuid.UUID(order_id))
        if after[0].tzinfo is None:
            raise ValueError("naive timestamp")
        after[0].astimezone(UTC)  # OverflowError near year 1 or 9999, as the driver would raise
        return after
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise ApiError(
            422,
            "VALIDATION_FAILED",
            "cursor is invalid",
            [{"field": "cursor", "message": "use the nextCursor of a previous page", "type": "cursor"}],
        ) from None


@app.put(
    "/products/<sku>",
    summary="Create or update a product (admin)",
    middlewares=[http.require_admin],
    responses={
        200: documented(ProductOut, "The product"),
        400: error_doc("Body is not JSON"),
        403: error_doc("Admin scope required"),
        422: error_doc("Invalid body or SKU"),
        **COMMON_ERRORS,
    },
)
def put_product(sku: str):
    http.parse(_SKU, sku, field="sku")
    request = http.parse(PutProductRequest, http.body(app))
    command = UpsertProduct(
        sku=sku, name=request.name, unit_price=request.unit_price, currency=request.currency
    )
    product = _run(lambda: upsert_product(command, _uow()))
    return json_response(200, ProductOut.of(product).model_dump(mode="json", by_alias=True))


# OpenAPI: the bodies Powertools would learn from validation-enabled signatures,
# declared here instead, since request validation costs ~100 ms of cold start.
QUERY_PARAMETERS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/orders", "get"): [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "the nextCursor of the previous page",
            "schema": {"type": "string"},
        },
    ],
}
REQUEST_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("/orders", "post"): PlaceOrderRequest,
    ("/products/{sku}", "put"): PutProductRequest,
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
