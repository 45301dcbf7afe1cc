"""InventoryFunction: reserves stock for each ``OrderCreated``, consumes the
reservation on ``ShipmentDispatched`` and releases it on ``OrderCancelled``
(EventBridge rule).

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
from common.events import OrderCancelled, OrderCreated, ShipmentDispatched
from common.observability import logger, metrics, tracer
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.usecases import (
    Handled,
    ReservationResult,
    consume_reservation,
    release_reservation,
    reserve_stock,
)

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events",))

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


def handle(event: dict[str, Any], deps: Container, context: Any = None) -> Handled:
    """Handle one delivered event with the given parts (the handler's, or a test's)."""
    detail = parse_event(event, ACCEPTS).detail
    if isinstance(detail, ShipmentDispatched):
        return consume(detail, deps)
    if isinstance(detail, OrderCancelled):
        return release(detail, deps, context)
    assert isinstance(detail, OrderCreated)  # parse_event accepted only ACCEPTS
    return reserve_order(detail, deps, context).handled


def consume(dispatched: ShipmentDispatched, deps: Container) -> Handled:
    engine = deps.engine
    handled = retry_on_disconnect(
        lambda: consume_reservation(dispatched, InventoryUnitOfWork(engine)), engine=engine
    )
    logger.info("dispatch handled", extra={"order_id": str(dispatched.order_id), "handled": handled.value})
    return handled


def release(cancelled: OrderCancelled, deps: Container, context: Any = None) -> Handled:
    engine = deps.engine
    result = retry_on_disconnect(
        lambda: release_reservation(cancelled, InventoryUnitOfWork(engine)), engine=engine
    )
    deps.publish_committed(result.outbox_ids, context)
    logger.info(
        "cancellation handled", extra={"order_id": str(cancelled.order_id), "handled": result.handled.value}
    )
    return result.handled


def reserve(event: dict[str, Any], deps: Container, context: Any = None) -> ReservationResult:
    """Reserve for one delivered ``OrderCreated`` (a test's entry point)."""
    return reserve_order(parse_event(event, (OrderCreated,)).detail, deps, context)


def reserve_order(order: OrderCreated, deps: Container, context: Any = None) -> ReservationResult:
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
    handled = handle(event, container(), context)
    metrics.add_metric(name=METRICS[handled], unit="Count", value=1)
    return {"handled": handled.value}
