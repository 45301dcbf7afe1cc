"""POST /orders, GET /orders/{orderId}, GET /orders."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from common import http
from common.auth import MAX_SUBJECT, Principal
from common.bootstrap import container
from common.http import ApiError, documented, error_doc, json_response
from common.observability import logger, metrics
from orders.domain.commands import PlaceOrder
from orders.domain.model import OrderNotFound, OrderStatus
from orders.handlers import paging
from orders.handlers.routes.common import COMMON_ERRORS
from orders.handlers.schemas import OrderOut, OrderPage, PlaceOrderRequest
from orders.handlers.wiring import run, uow
from orders.usecases import get_order, list_orders, place_order

MAX_IDEMPOTENCY_KEY = 128

router = APIGatewayHttpRouter()


@router.post(
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
    who = http.principal(router)
    request = http.parse(PlaceOrderRequest, http.body(router))
    if who.email is None:
        raise ApiError(
            422,
            "VALIDATION_FAILED",
            who.email_problem or "the token carries no usable email for the confirmation",
            [{"field": "token.email", "message": "required", "type": "missing"}],
        )
    key = router.current_event.headers.get("idempotency-key")
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
        correlation_id=http.correlation_id(router),
        request_hash=hashlib.sha256(canonical.encode()).hexdigest(),
        idempotency_key=key,
    )
    placed = run(lambda: place_order(command, uow()))
    if placed.outbox_ids:
        metrics.add_metric(name="OrderPlaced", unit="Count", value=1)
        # After the commit, at once; if this fails the client still gets its 201
        # and the row waits for the relay.
        container().publish_committed(placed.outbox_ids, router.lambda_context)
    order = placed.order
    logger.info("order placed", extra={"order_id": str(order.order_id), "new": bool(placed.outbox_ids)})
    return json_response(
        201,
        OrderOut.of(order).model_dump(mode="json", by_alias=True),
        {"Location": f"/orders/{order.order_id}"},
    )


def order_id_of(raw: str) -> uuid.UUID:
    """The path's order id; one that is not a UUID names no order (404, not 422)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise OrderNotFound(raw) from None


def viewer(who: Principal) -> str | None:
    """Whose orders the caller may see: their own, or (``None``) any, as an admin."""
    return None if who.is_admin else who.subject


@router.get(
    "/orders/<orderId>",
    summary="Get one of your orders (an admin: any order)",
    responses={
        200: documented(OrderOut, "The order"),
        404: error_doc("Unknown order, or someone else's"),
        422: error_doc(http.BAD_PATH_PARAMETER),
        **COMMON_ERRORS,
    },
)
def get_one(orderId: str):
    order_id = order_id_of(orderId)
    order = run(lambda: get_order(order_id, viewer(http.principal(router)), uow()))
    return json_response(200, OrderOut.of(order).model_dump(mode="json", by_alias=True))


@router.get(
    "/orders",
    summary="List your orders, newest first (an admin: any customer's, filtered)",
    responses={
        200: documented(OrderPage, "A page of orders"),
        422: error_doc("Invalid limit, cursor, status or customerId"),
        **COMMON_ERRORS,
    },
)
def get_many():
    params = router.current_event.query_string_parameters or {}
    limit = paging.parse_limit(params.get("limit"))
    after = _decode_cursor(params.get("cursor"))
    status = _status_filter(params.get("status"))
    who = http.principal(router)
    # A customer's listing is their own whatever customerId says; an admin's is anyone's.
    customer = _customer_filter(params.get("customerId")) if who.is_admin else who.subject
    orders, next_after = run(lambda: list_orders(customer, limit, after, uow(), status=status))
    cursor = paging.encode_cursor([next_after[0].isoformat(), str(next_after[1])]) if next_after else None
    page = OrderPage(orders=[OrderOut.of(o) for o in orders], next_cursor=cursor)
    return json_response(200, page.model_dump(mode="json", by_alias=True))


def _status_filter(raw: str | None) -> OrderStatus | None:
    if raw is None:
        return None
    try:
        return OrderStatus(raw)
    except ValueError:
        raise _invalid("status", f"one of {', '.join(OrderStatus)}", "enum") from None


def _customer_filter(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_SUBJECT or "\x00" in raw:
        raise _invalid("customerId", f"a customer id of 1 to {MAX_SUBJECT} characters", "string_length")
    return raw


def _invalid(field: str, message: str, kind: str) -> ApiError:
    return ApiError(
        422, "VALIDATION_FAILED", f"{field} is invalid", [{"field": field, "message": message, "type": kind}]
    )


def _decode_cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not raw:
        return None
    try:
        created, order_id = paging.decode_cursor(raw)
        if not isinstance(created, str) or not isinstance(order_id, str):
            raise TypeError("cursor parts must be strings")  # uuid.UUID(123) raises AttributeError
        after = (datetime.fromisoformat(created), uuid.UUID(order_id))
        if after[0].tzinfo is None:
            raise ValueError("naive timestamp")
        after[0].astimezone(UTC)  # OverflowError near year 1 or 9999, as the driver would raise
        return after
    except (ValueError, TypeError, OverflowError):
        raise paging.invalid_cursor() from None


REQUEST_BODIES = {("/orders", "post"): PlaceOrderRequest}
FILTERS: list[dict[str, object]] = [
    {
        "name": "status",
        "in": "query",
        "required": False,
        "description": "only orders in this status",
        "schema": {"type": "string", "enum": list(OrderStatus)},
    },
    {
        "name": "customerId",
        "in": "query",
        "required": False,
        "description": "an admin: only this customer's orders (a customer's listing is always their own)",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT},
    },
]
QUERY_PARAMETERS = {("/orders", "get"): [*paging.QUERY_PARAMETERS, *FILTERS]}
