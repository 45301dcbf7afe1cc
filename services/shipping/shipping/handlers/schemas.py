"""The shipping API's request and response bodies (camelCase JSON)."""

from __future__ import annotations

import uuid

from pydantic import Field

from common.events import CamelModel, RequestModel, UtcDatetime
from shipping.domain.model import Shipment


class DispatchRequest(RequestModel):
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)


class ShipmentOut(CamelModel):
    order_id: uuid.UUID
    status: str
    carrier: str | None
    tracking_number: str | None
    requested_at: UtcDatetime | None
    dispatched_at: UtcDatetime | None
    delivered_at: UtcDatetime | None
    cancelled_at: UtcDatetime | None = None

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentOut:
        return cls(
            order_id=shipment.order_id,
            status=shipment.status.value,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            # A cancellation recorded before any request: nothing was ever requested.
            requested_at=shipment.requested_at if shipment.was_requested else None,
            dispatched_at=shipment.dispatched_at,
            delivered_at=shipment.delivered_at,
            cancelled_at=shipment.cancelled_at,
        )
