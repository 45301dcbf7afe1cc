"""Money: exact to each currency's ISO 4217 minor unit, from parsing to totals to display."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from common.events import EventMetadata, OrderCreated
from common.iso4217 import MINOR_UNITS
from common.money import Money, MoneyError, exponent, is_currency


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("JPY", 0), ("KRW", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("BHD", 3), ("CLF", 4), ("UYW", 4)],
)
def test_exponents_are_iso_4217_minor_units(currency: str, digits: int) -> None:
    assert exponent(currency) == digits
    assert is_currency(currency)


# ZZZ: no such code; XAU, XXX: ISO codes whose minor unit is "N.A.": no amount can be checked.
@pytest.mark.parametrize("code", ["ZZZ", "usd", "US", "XAU", "XXX", "XTS", ""])
def test_a_code_with_no_iso_minor_unit_is_no_currency(code: str) -> None:
    assert not is_currency(code)
    with pytest.raises(MoneyError):
        exponent(code)
    with pytest.raises(MoneyError):
        Money(1, code)


def test_the_checked_in_table_is_the_iso4217_package_s() -> None:
    pytest.importorskip("iso4217", reason="a development dependency: pip install -e '.[dev]'")
    from orderflow.currencies import TABLE, render

    assert TABLE.read_text(encoding="utf-8") == render(), "run python -m orderflow.currencies"


def test_the_table_fits_the_stored_scale() -> None:
    # The orders schema stores NUMERIC(_, 4): an exponent above 4 would need a migration.
    assert max(MINOR_UNITS.values()) <= 4
    assert len(MINOR_UNITS) > 150


@pytest.mark.parametrize(
    ("text", "currency", "minor_units"),
    [
        ("1200", "JPY", 1200),
        ("0", "JPY", 0),
        ("12.50", "USD", 1250),
        ("0.00", "USD", 0),
        ("999999999999.99", "USD", 99999999999999),
        ("1.250", "KWD", 1250),
        ("0.001", "BHD", 1),
        ("0.0001", "CLF", 1),
    ],
)
def test_an_amount_with_exactly_the_currency_s_digits_is_money(
    text: str, currency: str, minor_units: int
) -> None:
    money = Money.parse(text, currency)
    assert money == Money(minor_units, currency)
    assert str(money) == text
    assert money.amount == Decimal(text)
    assert -money.amount.as_tuple().exponent == exponent(currency)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1200.50", "JPY"),  # too many digits
        ("1200.00", "JPY"),
        ("1200.", "JPY"),
        ("12.5", "USD"),  # too few
        ("12", "USD"),
        ("12.500", "USD"),  # too many
        ("1.25", "KWD"),  # too few
        ("1.2500", "KWD"),
        ("1.250", "CLF"),
        ("12.50\n", "USD"),
        ("-1.00", "USD"),
        ("+1.00", "USD"),
        (" 1.00", "USD"),
        ("\uff11\uff12.\uff15\uff10", "USD"),  # fullwidth digits
        ("\u0661\u0662.\u0665\u0660", "USD"),  # Arabic-Indic digits
        ("1e2", "JPY"),
        ("12,50", "USD"),
        ("1,200", "JPY"),
        ("", "USD"),
        ("1234567890123", "JPY"),  # 13 digits before the point
        ("NaN", "USD"),
    ],
)
def test_anything_else_is_refused(text: str, currency: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text, currency)


@pytest.mark.parametrize("value", [12.5, 1200, Decimal("12.50"), None])
def test_a_number_is_not_a_decimal_string(value: Any) -> None:
    with pytest.raises(MoneyError, match="decimal string"):
        Money.parse(value, "USD")


def test_an_unknown_currency_is_refused_whatever_the_amount() -> None:
    with pytest.raises(MoneyError, match="ZZZ"):
        Money.parse("12.50", "ZZZ")


def test_the_message_says_the_currency_s_rule() -> None:
    with pytest.raises(MoneyError, match=r'whole number of JPY.*"1200"'):
        Money.parse("1200.50", "JPY")
    with pytest.raises(MoneyError, match="exactly 3 decimal places for KWD"):
        Money.parse("1.25", "KWD")


@pytest.mark.parametrize(
    ("text", "currency", "minor_units"),
    [("1200.00", "JPY", 1200), ("1.25", "KWD", 1250), ("0.10", "CLF", 1000), ("1200", "JPY", 1200)],
)
def test_events_also_take_the_former_two_place_form_where_it_is_exact(
    text: str, currency: str, minor_units: int
) -> None:
    assert Money.parse(text, currency, two_places_too=True) == Money(minor_units, currency)


@pytest.mark.parametrize(("text", "currency"), [("1200.50", "JPY"), ("12.5", "USD"), ("1.2", "KWD")])
def test_but_never_round(text: str, currency: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text, currency, two_places_too=True)


@pytest.mark.parametrize(
    ("stored", "currency", "minor_units"),
    [
        (Decimal("1200.0000"), "JPY", 1200),
        (Decimal("12.5000"), "USD", 1250),
        (Decimal("1.2500"), "KWD", 1250),
        (Decimal("0.0001"), "CLF", 1),
    ],
)
def test_a_stored_numeric_reads_back_exactly(stored: Decimal, currency: str, minor_units: int) -> None:
    assert Money.of(stored, currency) == Money(minor_units, currency)


@pytest.mark.parametrize(
    ("stored", "currency"),
    [(Decimal("1200.5000"), "JPY"), (Decimal("1.2345"), "KWD"), (Decimal("NaN"), "USD")],
)
def test_a_stored_numeric_that_needs_rounding_is_refused(stored: Decimal, currency: str) -> None:
    with pytest.raises(MoneyError):
        Money.of(stored, currency)


@pytest.mark.parametrize(
    ("currency", "prices", "quantity", "total"),
    [
        ("JPY", ["1200"] * 50, 1000, "60000000"),
        ("USD", ["0.10"] * 3, 1, "0.30"),  # 0.1 + 0.1 + 0.1 != 0.3 in floats
        ("USD", ["999999.99"] * 50, 1000, "49999999500.00"),
        ("KWD", ["0.333", "0.333", "0.334"], 3, "3.000"),
        ("BHD", [f"0.{n:03d}" for n in range(1, 51)], 7, "8.925"),
        ("CLF", ["0.0001"] * 50, 1, "0.0050"),
    ],
)
def test_totals_over_many_lines_are_exact_in_the_currency_s_digits(
    currency: str, prices: list[str], quantity: int, total: str
) -> None:
    lines = [Money.parse(p, currency) * quantity for p in prices]
    assert str(Money.total(lines, currency)) == total


def test_no_sum_across_currencies() -> None:
    with pytest.raises(MoneyError, match="cannot add"):
        Money.parse("1.00", "USD") + Money.parse("1.00", "EUR")
    with pytest.raises(MoneyError):
        Money.total([Money.parse("1", "JPY")], "USD")


@pytest.mark.parametrize(
    ("text", "currency", "shown"),
    [
        ("1200", "JPY", "1,200 JPY"),
        ("0", "JPY", "0 JPY"),
        ("1234567.89", "USD", "1,234,567.89 USD"),
        ("0.05", "USD", "0.05 USD"),
        ("1.250", "KWD", "1.250 KWD"),
        ("1000.0001", "CLF", "1,000.0001 CLF"),
    ],
)
def test_people_see_the_currency_s_digits_grouped_and_its_code(text: str, currency: str, shown: str) -> None:
    assert Money.parse(text, currency).display() == shown


# --- in a model: each amount checked against the model's currency, its own field named ---


def order_created(currency: str, unit_price: Any, total: Any) -> dict[str, Any]:
    return {
        "metadata": EventMetadata.new("corr-1").model_dump(mode="json", by_alias=True),
        "orderId": str(uuid.uuid4()),
        "customerId": "customer-1",
        "customerEmail": "ada@example.com",
        "items": [{"sku": "SKU-1", "quantity": 2, "unitPrice": unit_price}],
        "total": total,
        "currency": currency,
        "shippingAddress": {
            "name": "A",
            "line1": "1 Main St",
            "city": "L",
            "postalCode": "N1",
            "country": "GB",
        },
    }


@pytest.mark.parametrize(
    ("currency", "unit_price", "total"),
    [("JPY", "1200", "2400"), ("USD", "12.50", "25.00"), ("KWD", "1.250", "2.500")],
)
def test_an_event_s_amounts_round_trip_in_their_currency(currency: str, unit_price: str, total: str) -> None:
    event = OrderCreated.model_validate(order_created(currency, unit_price, total))
    assert event.total == Money.parse(total, currency)
    assert event.items[0].unit_price == Money.parse(unit_price, currency)
    wire = event.model_dump(mode="json", by_alias=True)
    assert (wire["items"][0]["unitPrice"], wire["total"]) == (unit_price, total)


@pytest.mark.parametrize(
    ("currency", "unit_price", "total", "bad"),
    [
        ("JPY", "1200.50", "2401", {("items", 0, "unitPrice")}),
        ("USD", "12.5", "25.00", {("items", 0, "unitPrice")}),
        ("KWD", "1.250", "2.50000", {("total",)}),
        ("USD", 12.5, 25, {("items", 0, "unitPrice"), ("total",)}),
        ("ZZZ", "12.50", "25.00", {("currency",)}),
        ("XAU", "1", "2", {("currency",)}),
    ],
)
def test_an_event_amount_off_its_currency_is_refused_by_name(
    currency: str, unit_price: Any, total: Any, bad: set[tuple[Any, ...]]
) -> None:
    with pytest.raises(ValidationError) as refused:
        OrderCreated.model_validate(order_created(currency, unit_price, total))
    assert {e["loc"] for e in refused.value.errors()} == bad


def test_an_event_from_before_per_currency_money_is_still_read() -> None:
    event = OrderCreated.model_validate(order_created("JPY", "1200.00", "2400.00"))
    assert event.model_dump(mode="json", by_alias=True)["total"] == "2400"


def test_an_item_built_in_another_currency_is_refused_by_name() -> None:
    from common.events import OrderCreatedItem

    wire = order_created("JPY", "1200", "2400")
    fields = {**OrderCreated.model_validate(wire).__dict__}
    fields["items"] = [OrderCreatedItem(sku="SKU-1", quantity=2, unit_price=Money(1200, "USD"))]
    with pytest.raises(ValidationError) as refused:
        OrderCreated(**fields)
    [error] = refused.value.errors()
    assert error["loc"] == ("items", 0, "unitPrice")
    assert "USD, not JPY" in error["msg"]
