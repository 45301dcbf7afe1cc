"""PostgreSQL adapters of the shipping ports (SQLAlchemy Core, parameterised queries)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from common.uow import SqlUnitOfWork
from shipping.adapters.tables import shipments
from shipping.domain.model import Shipment, ShipmentLine, ShipmentStatus


class SqlShipmentRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, shipment: Shipment) -> bool:
        inserted = self._c.execute(
            insert(shipments)
            .values(
                shipment_id=shipment.shipment_id,
                order_id=shipment.order_id,
                items=(
                    [{"sku": line.sku, "quantity": line.quantity} for line in shipment.lines]
                    if shipment.was_requested
                    else None
                ),
                shipping_address=shipment.shipping_address,
                status=shipment.status.value,
                correlation_id=shipment.correlation_id,
                cancelled_at=shipment.cancelled_at,
            )
            # A twin for the same order (a concurrent one waits here for the first
            # to commit) inserts nothing.
            .on_conflict_do_nothing(index_elements=[shipments.c.order_id])
            .returning(shipments.c.shipment_id)
        ).first()
        return inserted is not None

    def get_for_order(self, order_id: uuid.UUID) -> Shipment | None:
        row = self._c.execute(select(shipments).where(shipments.c.order_id == order_id)).first()
        return _to_shipment(row) if row else None

    def lock_for_order(self, order_id: uuid.UUID) -> Shipment | None:
        row = self._c.execute(
            select(shipments).where(shipments.c.order_id == order_id).with_for_update()
        ).first()
        return _to_shipment(row) if row else None

    def save(self, shipment: Shipment) -> None:
        self._c.execute(
            update(shipments)
            .where(shipments.c.shipment_id == shipment.shipment_id)
            .values(
                status=shipment.status.value,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                dispatched_at=shipment.dispatched_at,
                delivered_at=shipment.delivered_at,
                cancelled_at=shipment.cancelled_at,
            )
        )


def _to_shipment(row: Any) -> Shipment:
    return Shipment(
        order_id=row.order_id,
        lines=[ShipmentLine(i["sku"], i["quantity"]) for i in row.items or []],
        shipping_address=row.shipping_address,
        correlation_id=row.correlation_id,
        status=ShipmentStatus(row.status),
        shipment_id=row.shipment_id,
        requested_at=row.created_at,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        dispatched_at=row.dispatched_at,
        delivered_at=row.delivered_at,
        cancelled_at=row.cancelled_at,
    )


class ShippingUnitOfWork(SqlUnitOfWork):
    shipments: SqlShipmentRepository

    def bind(self, connection: Connection) -> None:
        self.shipments = SqlShipmentRepository(connection)
