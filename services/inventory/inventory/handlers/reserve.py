"""InventoryFunction: reserves stock for each ``OrderCreated``, consumes the
reservation on ``ShipmentDispatched`` and releases it on ``OrderCancelled``
(its SQS queue, which the EventBridge rule feeds).

An adapter only: ``handle`` runs one use case per event; ``common.consumer`` does
the rest (the batch, parsing, the retried unit of work, publishing, logs, metrics,
and what a failed record becomes).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import snapstart
from common.consumer import Consumer, Delivery, Outcome
from common.events import OrderCancelled, OrderCreated, ShipmentDispatched
from common.failures import PermanentFailure
from common.observability import logger, metrics, tracer
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.domain.model import ReservationNotFound
from inventory.usecases import Handled, consume_reservation, release_reservation, reserve_stock

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events", "sqs"))

METRICS = {
    Handled.RESERVED: "InventoryReserved",
    Handled.FAILED: "InventoryReservationFailed",
    Handled.DUPLICATE_EVENT: "DuplicateEvent",
    Handled.ORDER_ALREADY_DECIDED: "DuplicateOrder",
    Handled.CONSUMED: "ReservationConsumed",
    Handled.ALREADY_SETTLED: "DuplicateSettlement",
    Handled.RELEASED: "InventoryReleased",
    Handled.CANCELLED_UNRESERVED: "CancelledUnreserved",
}
ACCEPTS = (OrderCreated, OrderCancelled, ShipmentDispatched)


class UnreservedDispatch(PermanentFailure):
    """Goods left for an order that reserved nothing: shipping broke its contract (a
    dispatch follows ``InventoryReserved``, which follows the reservation's commit)."""


def handle(delivery: Delivery[OrderCreated | OrderCancelled | ShipmentDispatched]) -> Outcome:
    """Run the use case for one delivered event."""
    detail = delivery.detail
    log: dict[str, Any] = {"order_id": str(detail.order_id)}
    if isinstance(detail, ShipmentDispatched):
        try:
            handled = delivery.run(lambda uow: consume_reservation(detail, uow), InventoryUnitOfWork)
        except ReservationNotFound as exc:
            raise UnreservedDispatch(f"order {detail.order_id} left with nothing reserved") from exc
        return Outcome(METRICS[handled], log=log | {"handled": handled.value}, message="dispatch handled")
    if isinstance(detail, OrderCancelled):
        released = delivery.run(lambda uow: release_reservation(detail, uow), InventoryUnitOfWork)
        return Outcome(
            METRICS[released.handled],
            released.outbox_ids,
            log | {"handled": released.handled.value},
            message="cancellation handled",
        )
    reserved = delivery.run(lambda uow: reserve_stock(detail, uow), InventoryUnitOfWork)
    follow_up = reserved.published.metadata.event_id if reserved.published else None
    return Outcome(
        METRICS[reserved.handled],
        reserved.outbox_ids,
        log
        | {"handled": reserved.handled.value, "follow_up_event_id": str(follow_up) if follow_up else None},
        message="order handled",
    )


consumer = Consumer(ACCEPTS, handle)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.process(event, context)
