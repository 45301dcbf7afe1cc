"""PostgreSQL adapters of the shipping ports (SQLAlchemy Core, parameterised queries)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
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
                items=[{"sku": line.sku, "quantity": line.quantity} for line in shipment.lines],
                shipping_address=shipment.shipping_address,
                status=shipment.status.value,
                correlation_id=shipment.correlation_id,
            )
            # A twin for the same order (a concurrent one waits here for the first
            # to commit) inserts nothing.
            .on_conflict_do_nothing(index_elements=[shipments.c.order_id])
            .returning(shipments.c.shipment_id)
        ).first()
        return inserted is not None

    def get_for_order(self, order_id: uuid.UUID) -> Shipment | None:
        row = self._c.execute(select(shipments).where(shipments.c.order_id == order_id)).first()
        if row is None:
            return None
        return Shipment(
            order_id=row.order_id,
            lines=[ShipmentLine(i["sku"], i["quantity"]) for i in row.items],
            shipping_address=row.shipping_address,
            correlation_id=row.correlation_id,
            status=ShipmentStatus(row.status),
            shipment_id=row.shipment_id,
        )


class ShippingUnitOfWork(SqlUnitOfWork):
    shipments: SqlShipmentRepository

    def bind(self, connection: Connection) -> None:
        self.shipments = SqlShipmentRepository(connection)
