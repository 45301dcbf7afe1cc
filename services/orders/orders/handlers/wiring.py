"""What every orders route needs: a unit of work, run with retries on a lost connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from common.bootstrap import container
from common.db import retry_on_disconnect
from orders.adapters.repository import OrdersUnitOfWork

T = TypeVar("T")


def uow() -> OrdersUnitOfWork:
    return OrdersUnitOfWork(container().engine)


def run(operation: Callable[[], T]) -> T:
    return retry_on_disconnect(operation, engine=container().engine)
