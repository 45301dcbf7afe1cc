"""Orders domain: products, orders and their lines, and the rules that bind them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from common.money import Money


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPING = "SHIPPING"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    REJECTED = "REJECTED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"


class DomainError(Exception):
    """A rule of the domain was broken by the request."""


class UnknownSkus(DomainError):
    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"unknown SKU(s): {', '.join(skus)}")
        self.skus = skus


class MixedCurrencies(DomainError):
    def __init__(self, currencies: list[str]) -> None:
        super().__init__(f"items are priced in several currencies: {', '.join(currencies)}")
        self.currencies = currencies


class IdempotencyKeyReused(DomainError):
    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request")


class OrderNotFound(DomainError):
    pass


class OrderNotCancellable(DomainError):
    def __init__(self, status: OrderStatus) -> None:
        super().__init__(f"a {status.value} order cannot be cancelled")
        self.status = status


class ProductNotFound(DomainError):
    def __init__(self, sku: str) -> None:
        super().__init__(f"no product has SKU {sku}")
        self.sku = sku


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price: Money

    @property
    def currency(self) -> str:
        return self.unit_price.currency


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass
class Order:
    order_id: uuid.UUID
    customer_id: str
    customer_email: str
    status: OrderStatus
    lines: list[OrderLine]
    currency: str
    shipping_address: dict[str, object]
    correlation_id: str
    created_at: datetime
    updated_at: datetime
    rejection_reason: str | None = None
    cancellation_reason: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = field(default=None, repr=False)

    @property
    def total(self) -> Money:
        return Money.total((line.line_total for line in self.lines), self.currency)

    @classmethod
    def price(
        cls,
        *,
        order_id: uuid.UUID,
        customer_id: str,
        customer_email: str,
        quantities: list[tuple[str, int]],
        catalog: dict[str, Product],
        shipping_address: dict[str, object],
        correlation_id: str,
        now: datetime,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> Order:
        """A new PENDING order priced from the catalog (never from the client)."""
        unknown = [sku for sku, _ in quantities if sku not in catalog]
        if unknown:
            raise UnknownSkus(unknown)
        currencies = sorted({catalog[sku].currency for sku, _ in quantities})
        if len(currencies) > 1:
            raise MixedCurrencies(currencies)
        return cls(
            order_id=order_id,
            customer_id=customer_id,
            customer_email=customer_email,
            status=OrderStatus.PENDING,
            lines=[OrderLine(sku, qty, catalog[sku].unit_price) for sku, qty in quantities],
            currency=currencies[0],
            shipping_address=shipping_address,
            correlation_id=correlation_id,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
