"""Money: an amount in one ISO 4217 currency, exact to that currency's minor unit.

A currency's exponent (its number of minor-unit digits: JPY 0, USD 2, KWD 3, CLF 4)
comes from ISO 4217's own table (``common.iso4217``, generated from the ``iso4217``
package), never from a display convention such as Babel/CLDR's, which differs for some
currencies. ``Money`` holds an integer count of minor units, so sums and products are
exact; it is the only thing that parses, formats or compares amounts across currencies.
Nothing rounds: an amount that does not fit its currency's minor unit is refused.

On the wire an amount is a decimal string with exactly the currency's digits
(``"1200"`` JPY, ``"12.50"`` USD, ``"1.250"`` KWD), never a number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.iso4217 import MINOR_UNITS

# At most 12 digits before the point (as before per-currency money), at most 4 after
# (ISO's largest exponent, CLF and UYW). ASCII digits only: \d would take fullwidth or
# Arabic-Indic digits, and $ a final newline (fullmatch is used).
MAX_INTEGER_DIGITS = 12
MAX_EXPONENT = 4
AMOUNT_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,4})?$"
_AMOUNT = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,4}))?")
CURRENCY_PATTERN = r"^[A-Z]{3}$"


class MoneyError(ValueError):
    """An amount or a currency that is not money (a 422 at the API, a bad event elsewhere)."""


def is_currency(code: object) -> bool:
    """True for a current ISO 4217 code that has a minor unit (not XAU, XDR, XTS, XXX...)."""
    return isinstance(code, str) and code in MINOR_UNITS


def exponent(currency: str) -> int:
    """The number of minor-unit digits of ``currency``, from ISO 4217."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code with a minor unit") from None


def amount_pattern(exp: int) -> str:
    """The wire format of an amount in a currency of exponent ``exp``."""
    return r"^[0-9]{1,12}$" if exp == 0 else rf"^[0-9]{{1,12}}\.[0-9]{{{exp}}}$"


def example(currency: str) -> str:
    exp = exponent(currency)
    return "1200" if exp == 0 else "12." + "50".ljust(exp, "0")[:exp]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one currency, as a whole number of its minor units (cents, fils, yen)."""

    minor_units: int
    currency: str

    def __post_init__(self) -> None:
        exponent(self.currency)  # refuses an unknown code
        if isinstance(self.minor_units, bool) or not isinstance(self.minor_units, int):
            raise MoneyError("minor units must be an int")

    # --- making money ---

    @classmethod
    def parse(cls, text: object, currency: str, *, two_places_too: bool = False) -> Money:
        """Money from its wire form, which must have exactly the currency's minor-unit digits.

        ``two_places_too`` also takes the two-place form every amount had before money was
        per currency (``"1200.00"`` JPY, ``"1.25"`` KWD), but only where it converts exactly:
        events published then may still be in queues, dead-letter queues or the archive.
        """
        exp = exponent(currency)
        if not isinstance(text, str):
            raise MoneyError(f'must be a decimal string, e.g. "{example(currency)}", not a number')
        match = _AMOUNT.fullmatch(text)
        if match is None:
            raise MoneyError(f'must be a decimal string of ASCII digits, e.g. "{example(currency)}"')
        whole, fraction = match.group(1), match.group(2) or ""
        if len(fraction) != exp and not (two_places_too and len(fraction) == 2):
            raise MoneyError(_digits_rule(currency, exp))
        padded = fraction.ljust(exp, "0")
        if padded[exp:].strip("0"):
            raise MoneyError(_digits_rule(currency, exp))  # the old form, but it would need rounding
        return cls(int(whole) * 10**exp + int(padded[:exp] or "0"), currency)

    @classmethod
    def of(cls, amount: Decimal, currency: str) -> Money:
        """Money from a decimal (a stored NUMERIC): exact, or refused, never rounded."""
        exp = exponent(currency)
        scaled = amount.scaleb(exp)
        if not amount.is_finite() or scaled != scaled.to_integral_value():
            raise MoneyError(f"{amount} is not a whole number of {currency} minor units ({exp} digits)")
        return cls(int(scaled), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def total(cls, amounts: Iterable[Money], currency: str) -> Money:
        """The sum of ``amounts``, all in ``currency`` (zero when there are none)."""
        result = cls.zero(currency)
        for amount in amounts:
            result = result + amount
        return result

    # --- arithmetic: exact, and only within one currency ---

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise MoneyError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.minor_units + other.minor_units, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            return NotImplemented
        return Money(self.minor_units * quantity, self.currency)

    __rmul__ = __mul__

    # --- reading it back ---

    @property
    def exponent(self) -> int:
        return exponent(self.currency)

    @property
    def amount(self) -> Decimal:
        """The amount with exactly the currency's digits: Decimal("1200"), Decimal("12.50")."""
        return Decimal(self.minor_units).scaleb(-self.exponent)

    def __str__(self) -> str:
        """The wire form: ``"1200"`` JPY, ``"12.50"`` USD, ``"1.250"`` KWD."""
        return self._digits("")

    def display(self) -> str:
        """For people, whatever their locale: digits grouped by thousands with commas, a
        point before the minor unit, then the ISO code: ``"1,200 JPY"``, ``"1,234.50 USD"``.

        The code rather than a symbol, since symbols are shared ($ is a dozen currencies)."""
        return f"{self._digits(',')} {self.currency}"

    def _digits(self, group: str) -> str:
        exp = self.exponent
        sign = "-" if self.minor_units < 0 else ""
        whole, fraction = divmod(abs(self.minor_units), 10**exp)
        text = f"{whole:,}".replace(",", group)
        return f"{sign}{text}.{fraction:0{exp}d}" if exp else f"{sign}{text}"

    # --- pydantic: a field of type Money is an amount string of its model's currency ---

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            _validate_field,
            serialization=core_schema.plain_serializer_function_ser_schema(
                str, return_schema=core_schema.str_schema()
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": "A decimal string with exactly the currency's ISO 4217 minor-unit digits.",
            "examples": ["12.50", "1200", "1.250"],
        }


def _digits_rule(currency: str, exp: int) -> str:
    if exp == 0:
        return f'must be a whole number of {currency}, with no decimal places, e.g. "{example(currency)}"'
    return f'must have exactly {exp} decimal places for {currency}, e.g. "{example(currency)}"'


@dataclass(frozen=True, slots=True)
class Priced:
    """An amount on its way into a model field, with the currency its model gives it
    (``None`` when that currency is itself invalid: the currency's own error says so)."""

    value: object
    currency: str | None
    two_places_too: bool = False


def _validate_field(value: Any) -> Any:
    if isinstance(value, Money):
        return value
    if not isinstance(value, Priced):
        raise MoneyError("an amount needs its currency")
    if isinstance(value.value, Money):
        if value.currency is not None and value.value.currency != value.currency:
            raise MoneyError(f"is in {value.value.currency}, not {value.currency}")
        return value.value
    if value.currency is None:
        # Only the form can be checked; the model fails on its currency anyway.
        if not isinstance(value.value, str) or _AMOUNT.fullmatch(value.value) is None:
            raise MoneyError('must be a decimal string of ASCII digits, e.g. "12.50"')
        return value.value
    return Money.parse(value.value, value.currency, two_places_too=value.two_places_too)


def currency_rules(amounts: Iterable[str], lists: dict[str, Iterable[str]]) -> list[dict[str, Any]]:
    """JSON Schema ``allOf`` entries: each amount's pattern, per exponent, for the object's
    ``currency``; ``amounts`` are its own properties, ``lists`` maps an array property to
    the amount properties of its items (all names as on the wire)."""
    groups: dict[int, list[str]] = {}
    for code, exp in MINOR_UNITS.items():
        groups.setdefault(exp, []).append(code)
    rules = []
    for exp, codes in sorted(groups.items()):
        amount = {"pattern": amount_pattern(exp)}
        then: dict[str, Any] = {name: amount for name in amounts}
        for array, names in lists.items():
            then[array] = {"items": {"properties": {name: amount for name in names}}}
        rules.append(
            {
                "if": {"properties": {"currency": {"enum": codes}}, "required": ["currency"]},
                "then": {"properties": then},
            }
        )
    return rules
