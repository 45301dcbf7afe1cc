"""OutboxRelayFunction: publishes every unsent outbox row of every service (scheduled).

Rows are claimed with a lease in a short ``SKIP LOCKED`` transaction and marked in
another, with no transaction open while PutEvents runs (see ``common.outbox``), so
overlapping runs, and the functions publishing right after their commits, never
publish one row at the same time. Each run also prunes published rows and
processed-event marks past their retention, and emits the outbox's health as EMF
metrics (the template alarms on them).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common import snapstart
from common.bootstrap import container
from common.observability import logger, metrics, tracer
from common.outbox.admin import health, prune
from common.outbox.relay import relay

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events",))

# Stop starting new work when less than this is left of the invocation.
SAFETY_MARGIN_S = 5.0


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = container()
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def time_left() -> float:
        return math.inf if not callable(remaining) else remaining() / 1000 - SAFETY_MARGIN_S

    result = relay(deps.engine, deps.publisher, time_left=time_left)
    settings = deps.settings
    pruned = prune(
        deps.engine,
        outbox_retention=timedelta(days=settings.outbox_retention_days),
        processed_retention=timedelta(days=settings.processed_events_retention_days),
        time_left=time_left,
    )
    with deps.engine.connect() as conn:
        state = health(conn)
    metrics.add_metric(name="OutboxPublished", unit="Count", value=result.published)
    metrics.add_metric(name="OutboxPublishFailed", unit="Count", value=result.failed)
    metrics.add_metric(name="OutboxParked", unit="Count", value=result.parked)
    # Calls refused as a whole (access denied, no bus): the template alarms when it lasts.
    metrics.add_metric(name="OutboxPublishRefused", unit="Count", value=result.refused)
    metrics.add_metric(name="OutboxParkedRows", unit="Count", value=state.parked)
    metrics.add_metric(
        name="OutboxOldestUnpublishedAge", unit="Seconds", value=state.oldest_unpublished_age_s
    )
    if result.published or result.failed or result.parked or result.refused or any(pruned):
        logger.info(
            "outbox relayed",
            extra={
                "published": result.published,
                "failed": result.failed,
                "parked": result.parked,
                "refused": result.refused,
                "pruned_outbox": pruned[0],
                "pruned_processed": pruned[1],
                "oldest_unpublished_age_s": round(state.oldest_unpublished_age_s, 1),
            },
        )
    return {"published": result.published, "failed": result.failed, "parked": result.parked}
