"""OrdersApiFunction: the orders HTTP API (API Gateway HTTP API, payload 2.0).

An adapter only. The routes live per resource in ``orders.handlers.routes``
(``orders``, ``products``, ``cancel``), each a Powertools ``Router``; the domain
errors map to the contract's responses in one place, ``orders.handlers.errors``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from common import http, snapstart
from common.bootstrap import container
from common.observability import logger, metrics, tracer
from orders.handlers import errors
from orders.handlers.routes import cancel, orders, products

# SnapStart runtime hooks (common.snapstart); nothing runs unless Lambda snapshots.
snapstart.register(services=("events",))

app = http.create_app(container)
errors.register(app)
ROUTES = (orders, cancel, products)
for _module in ROUTES:
    app.include_router(_module.router)

# OpenAPI: the bodies and query parameters Powertools would learn from
# validation-enabled signatures, declared by each route module instead, since
# request validation costs ~100 ms of cold start.
REQUEST_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    k: v for m in ROUTES for k, v in m.REQUEST_BODIES.items()
}
OPTIONAL_BODIES: set[tuple[str, str]] = {k for m in ROUTES for k in getattr(m, "OPTIONAL_BODIES", ())}
QUERY_PARAMETERS: dict[tuple[str, str], list[dict[str, Any]]] = {
    k: v for m in ROUTES for k, v in m.QUERY_PARAMETERS.items()
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
