"""Commands: what the outside world asks the orders service to do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from common.money import Money


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    customer_email: str
    quantities: list[tuple[str, int]]
    shipping_address: dict[str, object]
    correlation_id: str
    request_hash: str
    idempotency_key: str | None = None
    # Chosen once per request, so that a retried transaction (after a lost
    # connection made its commit ambiguous) finds its own order instead of a twin.
    order_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class UpsertProduct:
    sku: str
    name: str
    unit_price: Money


@dataclass(frozen=True)
class CancelOrder:
    order_id: uuid.UUID
    # Whose order it must be; None for an admin, who may cancel any.
    customer_id: str | None
    reason: str | None = None
