"""What every inventory route needs: its unit of work, run with retries on a lost connection
(the layer's one way, ``common.wiring``)."""

from __future__ import annotations

from common.wiring import run, unit_of_work
from inventory.adapters.repository import InventoryUnitOfWork

uow = unit_of_work(InventoryUnitOfWork)

__all__ = ["run", "uow"]
