"""The shipping API's one table of domain errors and the contract's responses to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from common import http
from common.http import ApiError
from shipping.domain.model import ShipmentConflict, ShipmentNotFound

ERRORS: dict[type[Exception], Callable[[APIGatewayHttpResolver, Any], ApiError]] = {
    ShipmentNotFound: lambda app, exc: ApiError(404, "NOT_FOUND", "this order has no shipment"),
    ShipmentConflict: lambda app, exc: ApiError(409, "SHIPMENT_STATE_CONFLICT", str(exc)),
}


def register(app: APIGatewayHttpResolver) -> None:
    http.register_errors(app, ERRORS)
