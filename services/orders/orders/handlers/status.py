"""OrderStatusFunction: moves an order's status on the inventory and shipping events
(its SQS queue, which the EventBridge rule feeds), a cancellation's answer
(ShipmentCancelled, ShipmentCancellationRefused) included; the rules are in
``orders.domain.status``.

An adapter only: ``handle`` runs one use case per event; ``common.consumer`` does
the rest. An event for an order that does not exist cannot be early (every event
this function takes follows the order's own commit), so it is refused for good and
reaches the DLQ.
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import snapstart
from common.consumer import Consumer, Delivery, Outcome
from common.events import (
    InventoryReservationFailed,
    InventoryReserved,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
)
from common.failures import PermanentFailure
from common.observability import logger, metrics, tracer
from orders.adapters.repository import OrdersUnitOfWork
from orders.domain.model import OrderNotFound
from orders.domain.status import StatusEvent
from orders.usecases import apply_status_event

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events", "sqs"))

ACCEPTS = (
    InventoryReserved,
    InventoryReservationFailed,
    ShipmentRequested,
    ShipmentCancelled,
    ShipmentCancellationRefused,
    ShipmentDispatched,
    ShipmentDelivered,
)


class UnknownOrder(PermanentFailure):
    """An event for an order this service never stored."""


def handle(delivery: Delivery[Any]) -> Outcome:
    """Apply one delivered event to its order's status."""
    detail = cast(StatusEvent, delivery.detail)  # the consumer accepted only ACCEPTS
    try:
        # One transaction, safe to run again: a retry after an ambiguous commit
        # finds its own processed mark and changes nothing.
        update = delivery.run(lambda uow: apply_status_event(detail, uow), OrdersUnitOfWork)
    except OrderNotFound as exc:
        raise UnknownOrder(f"no order {detail.order_id}") from exc
    changes = [f"{c.previous_status}->{c.status}" for c in update.changes]
    log: dict[str, Any] = {
        "order_id": str(update.order_id),
        "status": update.status.value if update.status else None,
        "changes": changes,
        "duplicate": update.duplicate,
    }
    if update.duplicate:
        return Outcome(None, log=log, message="event already handled")
    if update.conflict:
        # Another service broke its contract; the order keeps its status.
        logger.warning(
            "event contradicts the order's status; ignored", extra=log | {"conflict": update.conflict}
        )
        return Outcome("OrderStatusConflict", update.outbox_ids, log, message="status conflict")
    return Outcome(
        "OrderStatusChanged" if changes else None,
        update.outbox_ids,
        log,
        message="order status changed" if changes else "event handled",
        count=len(changes),
    )


consumer = Consumer(ACCEPTS, handle)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.process(event, context)
