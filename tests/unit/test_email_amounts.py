"""The confirmation email shows each amount as its currency writes it: its own minor-unit
digits, thousands grouped, the ISO code after; the same in any locale."""

from __future__ import annotations

import uuid

import pytest

from common.events import EventMetadata, OrderCreated, OrderCreatedItem, ShippingAddress
from common.money import Money
from notifications.domain.confirmation import render_confirmation


def order_in(currency: str, *lines: tuple[str, int, str]) -> OrderCreated:
    items = [OrderCreatedItem(sku=s, quantity=q, unit_price=Money.parse(p, currency)) for s, q, p in lines]
    return OrderCreated(
        order_id=uuid.UUID("1a2b3c4d-0000-4000-8000-000000000001"),
        customer_id="customer-1",
        customer_email="ada@example.com",
        items=items,
        total=Money.total((i.unit_price * i.quantity for i in items), currency),
        currency=currency,
        shipping_address=ShippingAddress(
            name="Ada", line1="1 Main St", city="Tokyo", postal_code="100-0001", country="JP"
        ),
        metadata=EventMetadata.new("corr-1"),
    )


@pytest.mark.parametrize(
    ("currency", "lines", "rows", "total"),
    [
        (
            "JPY",
            [("SKU-1", 2, "1200"), ("SKU-2", 1, "980")],
            ["SKU-1  2 x 1,200 JPY = 2,400 JPY", "SKU-2  1 x 980 JPY = 980 JPY"],
            "3,380 JPY",
        ),
        (
            "KWD",
            [("SKU-1", 3, "1.250"), ("SKU-2", 1000, "0.005")],
            ["SKU-1  3 x 1.250 KWD = 3.750 KWD", "SKU-2  1000 x 0.005 KWD = 5.000 KWD"],
            "8.750 KWD",
        ),
        (
            "USD",
            [("SKU-1", 1000, "1234.56")],
            ["SKU-1  1000 x 1,234.56 USD = 1,234,560.00 USD"],
            "1,234,560.00 USD",
        ),
    ],
)
def test_amounts_are_shown_in_the_currency_s_own_digits(
    currency: str, lines: list[tuple[str, int, str]], rows: list[str], total: str
) -> None:
    email = render_confirmation(order_in(currency, *lines))

    for row in rows:
        assert f"  {row}\n" in email.text
    assert f"Total: {total}\n" in email.text
    assert f'<th colspan="3">Total</th><td>{total}</td>' in email.html
    if currency == "JPY":
        assert ".00" not in email.text and ".00" not in email.html


def test_an_event_written_before_per_currency_money_shows_the_yen_without_decimals() -> None:
    # As an OrderCreated published with two places ("1200.00" JPY) arrives from a queue or a replay.
    wire = order_in("JPY", ("SKU-1", 2, "1200")).model_dump(mode="json", by_alias=True)
    wire["items"][0]["unitPrice"], wire["total"] = "1200.00", "2400.00"

    email = render_confirmation(OrderCreated.model_validate(wire))

    assert "  SKU-1  2 x 1,200 JPY = 2,400 JPY\n" in email.text
    assert "Total: 2,400 JPY\n" in email.text
