"""ShippingFunction: requests a shipment for each ``InventoryReserved`` (EventBridge rule).

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
from common.events import InventoryReserved
from common.observability import logger, metrics, tracer
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.usecases import Handled, ShipmentResult, request_shipment

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events",))

METRICS = {
    Handled.REQUESTED: "ShipmentRequested",
    Handled.DUPLICATE_EVENT: "DuplicateEvent",
    Handled.ORDER_ALREADY_SHIPPING: "DuplicateOrder",
}


def request(event: dict[str, Any], deps: Container, context: Any = None) -> ShipmentResult:
    """Handle one delivered event with the given parts (the handler's, or a test's)."""
    received = parse_event(event, (InventoryReserved,))
    reserved = received.detail
    engine = deps.engine
    result = retry_on_disconnect(
        lambda: request_shipment(reserved, ShippingUnitOfWork(engine)), engine=engine
    )
    deps.publish_committed(result.outbox_ids, context)
    logger.info(
        "reserved order handled",
        extra={
            "order_id": str(reserved.order_id),
            "handled": result.handled.value,
            "shipment_id": str(result.published.shipment_id) if result.published else None,
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
