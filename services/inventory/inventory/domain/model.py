"""Inventory domain: stock levels and the all-or-nothing reservation rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class DomainError(Exception):
    """A rule of the domain was broken by the request."""


class StockNotFound(DomainError):
    def __init__(self, sku: str) -> None:
        super().__init__(f"no stock is recorded for SKU {sku}")
        self.sku = sku


class StockBelowReserved(DomainError):
    def __init__(self, sku: str, on_hand: int, reserved: int) -> None:
        super().__init__(f"onHand {on_hand} for SKU {sku} is below the {reserved} already reserved")
        self.sku = sku
        self.on_hand = on_hand
        self.reserved = reserved


class Outcome(StrEnum):
    """The order's one decision: the first event about it makes it."""

    RESERVED = "RESERVED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # OrderCancelled came first: a late OrderCreated reserves nothing


class Settlement(StrEnum):
    """How an order's reservation ended: at most one of these, once."""

    CONSUMED = "CONSUMED"  # the goods left (ShipmentDispatched): onHand and reserved fell
    RELEASED = "RELEASED"  # the order was cancelled (OrderCancelled): reserved fell


class ReservationNotFound(DomainError):
    """Goods left for an order this service never reserved: another service broke its contract."""

    def __init__(self, order_id: object) -> None:
        super().__init__(f"order {order_id} has no reservation to consume")
        self.order_id = order_id


@dataclass(frozen=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def with_on_hand(self, on_hand: int) -> StockLevel:
        """The level after an admin counts ``on_hand``; never below what is reserved."""
        if on_hand < self.reserved:
            raise StockBelowReserved(self.sku, on_hand, self.reserved)
        return StockLevel(self.sku, on_hand, self.reserved)


@dataclass(frozen=True)
class Shortage:
    sku: str
    requested: int
    available: int


def requested_quantities(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quantity per SKU (a SKU named twice in one order is asked for once, summed)."""
    totals: dict[str, int] = {}
    for sku, quantity in items:
        totals[sku] = totals.get(sku, 0) + quantity
    return totals


def shortages(requested: Mapping[str, int], levels: Mapping[str, StockLevel]) -> list[Shortage]:
    """Every SKU that cannot be reserved in full; an unknown SKU has nothing available."""
    short = []
    for sku, quantity in requested.items():
        level = levels.get(sku)
        available = max(level.available, 0) if level is not None else 0
        if quantity > available:
            short.append(Shortage(sku, quantity, available))
    return short
