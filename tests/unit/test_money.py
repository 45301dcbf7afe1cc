"""Money is a two-place decimal string of ASCII digits, nothing else."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from common.events import Money


class Priced(BaseModel):
    price: Money


@pytest.mark.parametrize("text", ["12.50", "0.00", "999999999999.99"])
def test_two_place_ascii_decimals_are_money(text: str) -> None:
    assert Priced(price=text).price == Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "12.50\n",
        "12.5",
        "12",
        "-1.00",
        " 1.00",
        "\uff11\uff12.\uff15\uff10",
        "\u0661\u0662.\u0665\u0660",
        "12.5\uff10",
        "1e2",
        "12,50",
        "",
        "1234567890123.00",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        Priced(price=text)


def test_a_float_is_refused() -> None:
    with pytest.raises(ValidationError):
        Priced(price=12.5)
