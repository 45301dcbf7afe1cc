"""InventoryApiFunction: stock levels for admins (API Gateway HTTP API, payload 2.0).

The same shape as the orders API: an adapter only (parse and validate, call one use case
through ``inventory.handlers.wiring``), domain errors mapped in ``inventory.handlers.errors``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter, ValidationError

from common import http, snapstart
from common.bootstrap import container
from common.events import Sku
from common.http import documented, error_doc, json_response
from common.observability import logger, metrics, tracer
from inventory.domain.commands import SetStock
from inventory.domain.model import StockNotFound
from inventory.handlers import errors
from inventory.handlers.schemas import PutStockRequest, StockOut
from inventory.handlers.wiring import run, uow
from inventory.usecases import get_stock, set_stock

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register()

_SKU: TypeAdapter[str] = TypeAdapter(Sku)

app = http.create_app(container)
errors.register(app)


def _stock(description: str) -> OpenAPIResponse:
    return documented(StockOut, description)


COMMON_ERRORS = {
    401: error_doc("Missing or invalid token"),
    403: error_doc("Admin scope required"),
    500: error_doc("Unexpected error"),
}


@app.get(
    "/inventory/<sku>",
    summary="Get a SKU's stock level (admin)",
    middlewares=[http.require_admin],
    responses={
        200: _stock("The stock level"),
        404: error_doc("No stock recorded for the SKU"),
        422: error_doc(http.BAD_PATH_PARAMETER),
        **COMMON_ERRORS,
    },
)
def get_one(sku: str):  # no return annotation: Powertools would model it
    try:
        _SKU.validate_python(sku)
    except ValidationError:
        # A SKU that cannot exist is as unknown as one never stocked.
        raise StockNotFound(sku) from None
    level = run(lambda: get_stock(sku, uow()))
    return json_response(200, StockOut.of(level).model_dump(mode="json", by_alias=True))


@app.put(
    "/inventory/<sku>",
    summary="Set a SKU's stock on hand, creating it if new (admin)",
    middlewares=[http.require_admin],
    responses={
        200: _stock("The stock level"),
        400: error_doc("Body is not JSON"),
        409: error_doc("onHand below what is already reserved"),
        413: error_doc("Body over 64 KiB"),
        422: error_doc("Invalid body or SKU"),
        **COMMON_ERRORS,
    },
)
def put_one(sku: str):
    http.parse(_SKU, sku, field="sku")
    request = http.parse(PutStockRequest, http.body(app))
    level = run(lambda: set_stock(SetStock(sku=sku, on_hand=request.on_hand), uow()))
    logger.info("stock set", extra={"sku": sku, "on_hand": level.on_hand, "reserved": level.reserved})
    return json_response(200, StockOut.of(level).model_dump(mode="json", by_alias=True))


REQUEST_BODIES = {("/inventory/{sku}", "put"): PutStockRequest}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
