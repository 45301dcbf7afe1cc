"""Commands of the shipping service (imperative: what an admin asks for)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class DispatchShipment:
    order_id: uuid.UUID
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class DeliverShipment:
    order_id: uuid.UUID
