"""OutboxRelayFunction: publishes every unsent outbox row of every service (scheduled).

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so overlapping runs, and the
orders API publishing right after its commit, never publish one row twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from common.bootstrap import container
from common.observability import logger, metrics, tracer
from common.outbox import relay

# Stop starting new batches when less than this is left of the invocation.
SAFETY_MARGIN_MS = 5_000


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    deps = container()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    result = relay(
        deps.engine,
        deps.publisher,
        should_continue=lambda: remaining is None or remaining() > SAFETY_MARGIN_MS,
    )
    metrics.add_metric(name="OutboxPublished", unit="Count", value=result.published)
    metrics.add_metric(name="OutboxPublishFailed", unit="Count", value=result.failed)
    if result.published or result.failed:
        logger.info("outbox relayed", extra={"published": result.published, "failed": result.failed})
    return {"published": result.published, "failed": result.failed}
