"""ShippingFunction: requests a shipment for each ``InventoryReserved``, and decides
each ``OrderCancellationRequested`` (its SQS queue, which the EventBridge rule feeds).

An adapter only: ``handle`` runs one use case per event; ``common.consumer`` does
the rest (the batch, parsing, the retried unit of work, publishing, logs, metrics,
and what a failed record becomes).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import snapstart
from common.consumer import Consumer, Delivery, Outcome
from common.events import InventoryReserved, OrderCancellationRequested
from common.observability import logger, metrics, tracer
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.usecases import Handled, cancel_shipment, request_shipment

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events", "sqs"))

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


def handle(delivery: Delivery[InventoryReserved | OrderCancellationRequested]) -> Outcome:
    """Run the use case for one delivered event."""
    detail = delivery.detail
    if isinstance(detail, OrderCancellationRequested):
        result = delivery.run(lambda uow: cancel_shipment(detail, uow), ShippingUnitOfWork)
    else:
        result = delivery.run(lambda uow: request_shipment(detail, uow), ShippingUnitOfWork)
    shipment_id = getattr(result.published, "shipment_id", None)
    return Outcome(
        METRICS[result.handled],
        result.outbox_ids,
        {
            "order_id": str(detail.order_id),
            "handled": result.handled.value,
            "shipment_id": str(shipment_id) if shipment_id else None,
        },
        message="order handled",
    )


consumer = Consumer(ACCEPTS, handle)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.process(event, context)
