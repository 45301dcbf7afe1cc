"""ShippingFunction: requests a shipment for each ``InventoryReserved``, and decides
each ``OrderCancellationRequested`` (EventBridge rule).

An adapter only: parse the envelope, run one use case in a transaction (retried
if the connection drops), report. A malformed event raises ``InvalidEvent``: the
rule retries it, then it lands in the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import snapstart
from common.bootstrap import Container, container
from common.consumer import parse_event
from common.db import retry_on_disconnect
from common.events import InventoryReserved, OrderCancellationRequested
from common.observability import logger, metrics, tracer
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.usecases import Handled, ShipmentResult, cancel_shipment, request_shipment

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events",))

METRICS = {
    Handled.REQUESTED: "ShipmentRequested",
    Handled.DUPLICATE_EVENT: "DuplicateEvent",
    Handled.ORDER_ALREADY_SHIPPING: "DuplicateOrder",
    Handled.ORDER_CANCELLED: "ShipmentNotRequestedOrderCancelled",
    Handled.CANCELLED: "ShipmentCancelled",
    Handled.ALREADY_CANCELLED: "DuplicateCancellation",
    Handled.CANCELLATION_REFUSED: "ShipmentCancellationRefused",
}
ACCEPTS = (InventoryReserved, OrderCancellationRequested)


def request(event: dict[str, Any], deps: Container, context: Any = None) -> ShipmentResult:
    """Handle one delivered event with the given parts (the handler's, or a test's)."""
    detail = parse_event(event, ACCEPTS).detail
    engine = deps.engine
    if isinstance(detail, OrderCancellationRequested):
        cancellation = detail
        result = retry_on_disconnect(
            lambda: cancel_shipment(cancellation, ShippingUnitOfWork(engine)), engine=engine
        )
    else:
        assert isinstance(detail, InventoryReserved)  # parse_event accepted only ACCEPTS
        reserved = detail
        result = retry_on_disconnect(
            lambda: request_shipment(reserved, ShippingUnitOfWork(engine)), engine=engine
        )
    deps.publish_committed(result.outbox_ids, context)
    shipment_id = getattr(result.published, "shipment_id", None)
    logger.info(
        "order handled",
        extra={
            "order_id": str(detail.order_id),
            "detail_type": type(detail).DETAIL_TYPE,
            "handled": result.handled.value,
            "shipment_id": str(shipment_id) if shipment_id else None,
        },
    )
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    result = request(event, container(), context)
    metrics.add_metric(name=METRICS[result.handled], unit="Count", value=1)
    return {"handled": result.handled.value}
