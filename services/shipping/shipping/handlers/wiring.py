"""What every shipping route needs: its unit of work, run with retries on a lost connection
(the layer's one way, ``common.wiring``)."""

from __future__ import annotations

from common.wiring import run, unit_of_work
from shipping.adapters.repository import ShippingUnitOfWork

uow = unit_of_work(ShippingUnitOfWork)

__all__ = ["run", "uow"]
