"""GET /shipments/{orderId}, POST /shipments/{orderId}/dispatch, POST .../deliver (admin)."""

from __future__ import annotations

import uuid

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from common import http
from common.bootstrap import container
from common.http import documented, error_doc, json_response
from common.observability import logger, metrics
from shipping.domain.commands import DeliverShipment, DispatchShipment
from shipping.domain.model import Shipment, ShipmentNotFound
from shipping.handlers.schemas import DispatchRequest, ShipmentOut
from shipping.handlers.wiring import run, uow
from shipping.usecases import ShipmentChange, deliver_shipment, dispatch_shipment, get_shipment

router = APIGatewayHttpRouter()

COMMON_ERRORS: dict[int, OpenAPIResponse] = {
    401: error_doc("Missing or invalid token"),
    403: error_doc("Admin scope required"),
    404: error_doc("The order has no shipment record"),
    500: error_doc("Unexpected error"),
}


def _order_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ShipmentNotFound(raw) from None


def _reply(shipment: Shipment) -> object:
    return json_response(200, ShipmentOut.of(shipment).model_dump(mode="json", by_alias=True))


def _announce(change: ShipmentChange, metric: str) -> None:
    if change.outbox_ids:
        metrics.add_metric(name=metric, unit="Count", value=1)
        container().publish_committed(change.outbox_ids, router.lambda_context)
    logger.info(
        "shipment " + change.shipment.status.value.lower(),
        extra={"order_id": str(change.shipment.order_id), "changed": bool(change.outbox_ids)},
    )


@router.get(
    "/shipments/<orderId>",
    summary="Get an order's shipment (admin)",
    middlewares=[http.require_admin],
    responses={
        200: documented(ShipmentOut, "The shipment"),
        422: error_doc(http.BAD_PATH_PARAMETER),
        **COMMON_ERRORS,
    },
)
def get_one(orderId: str):
    order_id = _order_id(orderId)
    return _reply(run(lambda: get_shipment(order_id, uow())))


@router.post(
    "/shipments/<orderId>/dispatch",
    summary="Record that an order's goods left (admin)",
    middlewares=[http.require_admin],
    responses={
        200: documented(ShipmentOut, "The shipment, DISPATCHED (unchanged when repeated)"),
        400: error_doc("Body is not JSON"),
        409: error_doc("Cancelled, or already dispatched with another carrier or tracking number"),
        422: error_doc(f"Invalid body; or: {http.BAD_PATH_PARAMETER}"),
        **COMMON_ERRORS,
    },
)
def dispatch(orderId: str):
    order_id = _order_id(orderId)
    request = http.parse(DispatchRequest, http.body(router))
    command = DispatchShipment(order_id, request.carrier, request.tracking_number)
    change = run(lambda: dispatch_shipment(command, uow()))
    _announce(change, "ShipmentDispatched")
    return _reply(change.shipment)


@router.post(
    "/shipments/<orderId>/deliver",
    summary="Record that an order's goods arrived (admin)",
    middlewares=[http.require_admin],
    responses={
        200: documented(ShipmentOut, "The shipment, DELIVERED (unchanged when repeated)"),
        409: error_doc("Not yet dispatched, or cancelled"),
        422: error_doc(http.BAD_PATH_PARAMETER),
        **COMMON_ERRORS,
    },
)
def deliver(orderId: str):
    order_id = _order_id(orderId)
    change = run(lambda: deliver_shipment(DeliverShipment(order_id), uow()))
    _announce(change, "ShipmentDelivered")
    return _reply(change.shipment)


REQUEST_BODIES = {("/shipments/{orderId}/dispatch", "post"): DispatchRequest}
QUERY_PARAMETERS: dict[tuple[str, str], list[dict[str, object]]] = {}
