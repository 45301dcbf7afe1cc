"""Shipping domain: a shipment requested for an order whose stock is reserved."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class ShipmentStatus(StrEnum):
    REQUESTED = "REQUESTED"


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    order_id: uuid.UUID
    lines: list[ShipmentLine]
    shipping_address: dict[str, object]
    correlation_id: str
    status: ShipmentStatus = ShipmentStatus.REQUESTED
    shipment_id: uuid.UUID = field(default_factory=uuid.uuid4)
