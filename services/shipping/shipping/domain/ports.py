"""Ports of the shipping service: what its use cases need from the outside."""

from __future__ import annotations

import uuid
from typing import Protocol

from common.ports import ConsumingUnitOfWork, PublishingUnitOfWork
from shipping.domain.model import Shipment


class ShipmentRepository(Protocol):
    def add(self, shipment: Shipment) -> bool:
        """Insert ``shipment``; False, changing nothing, when its order already has one."""
        ...

    def get_for_order(self, order_id: uuid.UUID) -> Shipment | None: ...

    def lock_for_order(self, order_id: uuid.UUID) -> Shipment | None:
        """The order's shipment, locked against concurrent changes until the transaction ends."""
        ...

    def save(self, shipment: Shipment) -> None:
        """Write the shipment's status and dispatch/delivery details."""
        ...


class ApiUnitOfWork(PublishingUnitOfWork, Protocol):
    @property
    def shipments(self) -> ShipmentRepository: ...


class UnitOfWork(ConsumingUnitOfWork, Protocol):
    @property
    def shipments(self) -> ShipmentRepository: ...
