"""``retry_on_disconnect``: how many times it tries, and when it gives up (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine

from common.db import retry_on_disconnect


class Lost:
    """An operation whose connection is lost the first ``times`` calls."""

    def __init__(self, times: int, error: type[Exception] = ConnectionResetError) -> None:
        self.times, self.error, self.calls = times, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error("connection lost")
        return "done"


@pytest.fixture
def engine() -> Any:
    return create_engine("postgresql+pg8000://nobody@127.0.0.1:1/none")  # never connects


def test_a_lost_connection_is_retried_and_the_operation_then_succeeds(engine):
    operation = Lost(2)
    assert retry_on_disconnect(operation, engine=engine, base_delay=0.001) == "done"
    assert operation.calls == 3


def test_the_attempts_run_out_and_the_last_error_is_raised(engine):
    operation = Lost(10)
    with pytest.raises(ConnectionResetError):
        retry_on_disconnect(operation, engine=engine, attempts=3, base_delay=0.001)
    assert operation.calls == 3


def test_an_error_that_is_not_a_lost_connection_is_raised_at_once(engine):
    operation = Lost(1, error=ValueError)
    with pytest.raises(ValueError):
        retry_on_disconnect(operation, engine=engine, base_delay=0.001)
    assert operation.calls == 1


def test_with_time_left_it_tries_for_as_long_as_the_next_wait_fits(engine):
    # Given an outage longer than three attempts, and time for it
    clock = [10.0]
    operation = Lost(6)
    assert (
        retry_on_disconnect(operation, engine=engine, base_delay=0.001, time_left=lambda: clock[0]) == "done"
    )
    assert operation.calls == 7

    # When no time is left, the next failure is raised instead of waited out
    clock[0] = 0.0
    out_of_time = Lost(10)
    with pytest.raises(ConnectionResetError):
        retry_on_disconnect(out_of_time, engine=engine, base_delay=0.001, time_left=lambda: clock[0])
    assert out_of_time.calls == 1
