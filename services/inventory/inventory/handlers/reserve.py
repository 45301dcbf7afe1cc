"""InventoryFunction: reserves stock for each ``OrderCreated`` (EventBridge rule).

An adapter only: parse the envelope, run one use case in a transaction (retried
if the connection drops), report. A malformed event raises ``InvalidEvent``: the
rule retries it, then it lands in the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common.bootstrap import Container, container
from common.consumer import parse_event
from common.db import retry_on_disconnect
from common.events import OrderCreated
from common.observability import logger, metrics, tracer
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.usecases import Handled, ReservationResult, reserve_stock

METRICS = {
    Handled.RESERVED: "InventoryReserved",
    Handled.FAILED: "InventoryReservationFailed",
    Handled.DUPLICATE_EVENT: "DuplicateEvent",
    Handled.ORDER_ALREADY_DECIDED: "DuplicateOrder",
}


def reserve(event: dict[str, Any], deps: Container, context: Any = None) -> ReservationResult:
    """Handle one delivered event with the given parts (the handler's, or a test's)."""
    received = parse_event(event, (OrderCreated,))
    order = received.detail
    engine = deps.engine
    result = retry_on_disconnect(lambda: reserve_stock(order, InventoryUnitOfWork(engine)), engine=engine)
    deps.publish_committed(result.outbox_ids, context)
    logger.info(
        "order handled",
        extra={
            "order_id": str(order.order_id),
            "handled": result.handled.value,
            "follow_up_event_id": str(result.published.metadata.event_id) if result.published else None,
        },
    )
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    result = reserve(event, container(), context)
    metrics.add_metric(name=METRICS[result.handled], unit="Count", value=1)
    return {"handled": result.handled.value}
