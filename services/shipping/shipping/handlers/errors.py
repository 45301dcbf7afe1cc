"""The shipping API's one table of domain errors and the contract's responses to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from common import http
from common.http import ApiError
from shipping.domain.model import ShipmentConflict, ShipmentNotFound

ERRORS: dict[type[Exception], Callable[[Any], ApiError]] = {
    ShipmentNotFound: lambda exc: ApiError(404, "NOT_FOUND", "this order has no shipment"),
    ShipmentConflict: lambda exc: ApiError(409, "SHIPMENT_STATE_CONFLICT", str(exc)),
}


def register(app: APIGatewayHttpResolver) -> None:
    for error_type, to_api_error in ERRORS.items():

        def respond(exc: Exception, to_api_error: Any = to_api_error) -> Response:
            return http.error_response(app, to_api_error(exc))

        app.exception_handler(error_type)(respond)
