"""OrderStatusFunction: moves an order's status on the inventory and shipping events
(EventBridge), a cancellation's answer (ShipmentCancelled, ShipmentCancellationRefused)
included; the rules are in ``orders.domain.status``.

An adapter only: parse the event, call one use case. A malformed event raises
``InvalidEvent``; an event for an order that does not exist raises
``OrderNotFound`` (logged): either way Lambda's retries, then the DLQ, take it.
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import snapstart
from common.bootstrap import container
from common.consumer import parse_event
from common.db import retry_on_disconnect
from common.events import (
    InventoryReservationFailed,
    InventoryReserved,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
)
from common.observability import logger, metrics, tracer
from orders.adapters.repository import OrdersUnitOfWork
from orders.domain.model import OrderNotFound
from orders.domain.status import StatusEvent
from orders.usecases import apply_status_event

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events",))

ACCEPTS = (
    InventoryReserved,
    InventoryReservationFailed,
    ShipmentRequested,
    ShipmentCancelled,
    ShipmentCancellationRefused,
    ShipmentDispatched,
    ShipmentDelivered,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    received = parse_event(event, ACCEPTS)
    detail = cast(StatusEvent, received.detail)  # parse_event accepted only ACCEPTS
    deps = container()
    engine = deps.engine
    logger.append_keys(order_id=str(detail.order_id))
    try:
        # One transaction, safe to run again: a retry after an ambiguous commit
        # finds its own processed mark and changes nothing.
        update = retry_on_disconnect(
            lambda: apply_status_event(detail, OrdersUnitOfWork(engine)), engine=engine
        )
    except OrderNotFound:
        logger.error(
            "event for an unknown order; it will be retried, then dead-lettered",
            extra={"event_id": received.id},
        )
        raise
    deps.publish_committed(update.outbox_ids, context)
    if update.duplicate:
        logger.info("event already handled")
    elif update.conflict:
        # Another service broke its contract; the order keeps its status.
        logger.warning(
            "event contradicts the order's status; ignored",
            extra={"status": update.status, "conflict": update.conflict},
        )
        metrics.add_metric(name="OrderStatusConflict", unit="Count", value=1)
    for change in update.changes:
        logger.info(
            "order status changed", extra={"previous_status": change.previous_status, "status": change.status}
        )
    if update.changes:
        metrics.add_metric(name="OrderStatusChanged", unit="Count", value=len(update.changes))
    return {
        "orderId": str(update.order_id),
        "status": update.status.value if update.status else None,
        "changes": [f"{c.previous_status}->{c.status}" for c in update.changes],
        "duplicate": update.duplicate,
    }
