"""The orders API's one table of domain errors and the contract's responses to them.

Routes raise the domain's exceptions as they are; ``register`` installs a handler
for each (``app.exception_handler``), and ``common.http.handle_errors`` calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from common import http
from common.http import ApiError
from orders.domain.model import (
    IdempotencyKeyReused,
    MixedCurrencies,
    OrderNotCancellable,
    OrderNotFound,
    ProductNotFound,
    UnknownSkus,
)


def _unknown_skus(app: APIGatewayHttpResolver, exc: UnknownSkus) -> ApiError:
    body = http.body(app)
    items = body.get("items") if isinstance(body, dict) else None
    return ApiError(
        422,
        "UNKNOWN_SKU",
        str(exc),
        [
            {"field": f"items[{i}].sku", "message": "unknown SKU", "type": "unknown_sku"}
            for i, item in enumerate(items or [])
            if isinstance(item, dict) and item.get("sku") in exc.skus
        ],
    )


ERRORS: dict[type[Exception], Callable[[APIGatewayHttpResolver, Any], ApiError]] = {
    OrderNotFound: lambda app, exc: ApiError(404, "NOT_FOUND", "no such order"),
    ProductNotFound: lambda app, exc: ApiError(404, "NOT_FOUND", "no such product"),
    UnknownSkus: _unknown_skus,
    MixedCurrencies: lambda app, exc: ApiError(422, "MIXED_CURRENCIES", str(exc)),
    IdempotencyKeyReused: lambda app, exc: ApiError(409, "IDEMPOTENCY_KEY_REUSED", str(exc)),
    OrderNotCancellable: lambda app, exc: ApiError(409, "ORDER_NOT_CANCELLABLE", str(exc)),
}


def register(app: APIGatewayHttpResolver) -> None:
    http.register_errors(app, ERRORS)
