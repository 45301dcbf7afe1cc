"""What every orders route needs: its unit of work, run with retries on a lost connection
(the layer's one way, ``common.wiring``)."""

from __future__ import annotations

from common.wiring import run, unit_of_work
from orders.adapters.repository import OrdersUnitOfWork

uow = unit_of_work(OrdersUnitOfWork)

__all__ = ["run", "uow"]
