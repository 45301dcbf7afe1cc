"""POST /orders/{orderId}/cancel: the owner, or an admin, asks for a cancellation."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from common import http
from common.bootstrap import container
from common.http import documented, error_doc, json_response
from common.observability import logger, metrics
from orders.domain.commands import CancelOrder
from orders.handlers.routes.common import COMMON_ERRORS
from orders.handlers.routes.orders import order_id_of, viewer
from orders.handlers.schemas import CancelOrderRequest, OrderOut
from orders.handlers.wiring import run, uow
from orders.usecases import cancel_order

router = APIGatewayHttpRouter()


@router.post(
    "/orders/<orderId>/cancel",
    summary="Cancel one of your orders (an admin: any order)",
    responses={
        200: documented(OrderOut, "The order as it is: already CANCELLING or CANCELLED"),
        202: documented(OrderOut, "The order, now CANCELLING: the shipping service decides"),
        400: error_doc("Body is not JSON"),
        404: error_doc("Unknown order, or someone else's"),
        409: error_doc("ORDER_NOT_CANCELLABLE: the order is SHIPPED, DELIVERED or REJECTED"),
        413: error_doc("Body over 64 KiB"),
        422: error_doc("Invalid body (not an object, or a reason over 500 characters)"),
        **COMMON_ERRORS,
    },
)
def cancel(orderId: str):
    order_id = order_id_of(orderId)
    who = http.principal(router)
    # No body at all asks with no reason; `null` is a body that is not an object (422).
    request = http.parse(CancelOrderRequest, http.optional_body(router, absent={}))
    command = CancelOrder(order_id=order_id, customer_id=viewer(who), reason=request.reason)
    result = run(lambda: cancel_order(command, uow()))
    if result.outbox_ids:
        metrics.add_metric(name="OrderCancellationRequested", unit="Count", value=1)
        container().publish_committed(result.outbox_ids, router.lambda_context)
    logger.info("order cancellation asked", extra={"order_id": str(order_id), "accepted": result.accepted})
    return json_response(
        202 if result.accepted else 200, OrderOut.of(result.order).model_dump(mode="json", by_alias=True)
    )


REQUEST_BODIES = {("/orders/{orderId}/cancel", "post"): CancelOrderRequest}
OPTIONAL_BODIES = {("/orders/{orderId}/cancel", "post")}
QUERY_PARAMETERS: dict[tuple[str, str], list[dict[str, object]]] = {}
