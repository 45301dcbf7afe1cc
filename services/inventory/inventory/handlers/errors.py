"""The inventory API's one table of domain errors and the contract's responses to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from common import http
from common.http import ApiError
from inventory.domain.model import StockBelowReserved, StockNotFound


def _below_reserved(app: APIGatewayHttpResolver, exc: StockBelowReserved) -> ApiError:
    return ApiError(
        409,
        "STOCK_BELOW_RESERVED",
        str(exc),
        [
            {
                "field": "onHand",
                "message": f"must be at least {exc.reserved}, the quantity reserved",
                "type": "stock_below_reserved",
            }
        ],
    )


ERRORS: dict[type[Exception], Callable[[APIGatewayHttpResolver, Any], ApiError]] = {
    StockNotFound: lambda app, exc: ApiError(404, "NOT_FOUND", "no stock is recorded for this SKU"),
    StockBelowReserved: _below_reserved,
}


def register(app: APIGatewayHttpResolver) -> None:
    http.register_errors(app, ERRORS)
