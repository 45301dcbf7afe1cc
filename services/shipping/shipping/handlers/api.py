"""ShippingApiFunction: shipments for admins (API Gateway HTTP API, payload 2.0).

The same shape as the orders API: routes per resource in ``shipping.handlers.routes``
(a Powertools ``Router`` each), domain errors mapped in ``shipping.handlers.errors``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from common import http, snapstart
from common.bootstrap import container
from common.observability import logger, metrics, tracer
from shipping.handlers import errors
from shipping.handlers.routes import shipments

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events",))

app = http.create_app(container)
errors.register(app)
app.include_router(shipments.router)

REQUEST_BODIES: dict[tuple[str, str], type[BaseModel]] = dict(shipments.REQUEST_BODIES)
QUERY_PARAMETERS: dict[tuple[str, str], list[dict[str, Any]]] = dict(shipments.QUERY_PARAMETERS)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
