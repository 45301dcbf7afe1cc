"""How an HTTP function's routes reach the database: one way for every service.

``uow = unit_of_work(OrdersUnitOfWork)`` in the service's ``handlers/wiring.py``, then in a
route ``run(lambda: place_order(command, uow()))``: the use case opens its unit of work on
the container's engine, and runs again on a new connection if the old one dropped
(``common.db.retry_on_disconnect``; a use case is one transaction, so rerunning it is
safe). Domain errors are not caught here: each service's ``handlers/errors.py`` maps them
to the contract's responses in one table (``common.http.register_errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Engine

from common.bootstrap import container
from common.db import retry_on_disconnect

T = TypeVar("T")
U = TypeVar("U")


def unit_of_work(factory: Callable[[Engine], U]) -> Callable[[], U]:
    """A service's ``uow()``: a new unit of work on the container's engine per call."""
    return lambda: factory(container().engine)


def run(operation: Callable[[], T]) -> T:
    """``operation`` (a use case with its unit of work), again if the connection dropped."""
    return retry_on_disconnect(operation, engine=container().engine)
