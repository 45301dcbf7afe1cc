"""Ports of the shipping service: what its use cases need from the outside."""

from __future__ import annotations

import uuid
from typing import Protocol

from common.ports import ConsumingUnitOfWork
from shipping.domain.model import Shipment


class ShipmentRepository(Protocol):
    def add(self, shipment: Shipment) -> bool:
        """Insert ``shipment``; False, changing nothing, when its order already has one."""
        ...

    def get_for_order(self, order_id: uuid.UUID) -> Shipment | None: ...


class UnitOfWork(ConsumingUnitOfWork, Protocol):
    @property
    def shipments(self) -> ShipmentRepository: ...
