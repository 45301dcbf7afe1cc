"""The HTTP API's request and response bodies (camelCase JSON)."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal
from typing import Annotated

from pydantic import Field, WithJsonSchema, field_validator

from common.events import CamelModel, CurrencyCode, JsonInt, Money, RequestModel, ShippingAddress, Sku, UtcDatetime
from orders.domain.model import Order, OrderStatus, Product

MAX_UNIT_PRICE = Decimal("1000000.00")


class OrderItemIn(RequestModel):
    sku: Sku
    quantity: JsonInt = Field(ge=1, le=1000, strict=True)


class PlaceOrderRequest(RequestModel):
    items: list[OrderItemIn] = Field(min_length=1, max_length=50)
    shipping_address: ShippingAddress

    @field_validator("items")
    @classmethod
    def _distinct_skus(cls, items: list[OrderItemIn]) -> list[OrderItemIn]:
        counts = Counter(item.sku for item in items)
        duplicates = sorted(sku for sku, n in counts.items() if n > 1)
        if duplicates:
            raise ValueError(f"each SKU may appear once; repeated: {', '.join(duplicates)}")
        return items


class PutProductRequest(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    # The document states the bound too: a two-place amount (at most 12 digits) of at most
    # 1000000.00, leading zeros and all.
    unit_price: Annotated[
        Money,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": r"^(?:0{0,6}[0-9]{1,6}\.[0-9]{2}|0{0,5}1000000\.00)$",
                "examples": ["12.50"],
            }
        ),
    ]
    currency: CurrencyCode

    @field_validator("unit_price")
    @classmethod
    def _price_range(cls, value: Decimal) -> Decimal:
        if value > MAX_UNIT_PRICE:
            raise ValueError(f"must be at most {MAX_UNIT_PRICE}")
        return value


class CancelOrderRequest(RequestModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class OrderItemOut(CamelModel):
    sku: str
    quantity: int
    unit_price: Money
    line_total: Money


class OrderOut(CamelModel):
    order_id: uuid.UUID
    customer_id: str
    status: str
    rejection_reason: str | None = None
    cancellation_reason: str | None = None
    items: list[OrderItemOut]
    total: Money
    currency: str
    shipping_address: ShippingAddress
    created_at: UtcDatetime
    updated_at: UtcDatetime
    correlation_id: str

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            order_id=order.order_id,
            customer_id=order.customer_id,
            status=order.status.value,
            rejection_reason=order.rejection_reason,
            # Shown while the cancellation stands; a refused one (the goods had left) is not.
            cancellation_reason=(
                order.cancellation_reason
                if order.status in (OrderStatus.CANCELLING, OrderStatus.CANCELLED)
                else None
            ),
            items=[
                OrderItemOut(
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    line_total=line.line_total,
                )
                for line in order.lines
            ],
            total=order.total,
            currency=order.currency,
            shipping_address=ShippingAddress.model_validate(order.shipping_address),
            created_at=order.created_at,
            updated_at=order.updated_at,
            correlation_id=order.correlation_id,
        )


class OrderPage(CamelModel):
    orders: list[OrderOut]
    next_cursor: str | None


class ProductOut(CamelModel):
    sku: str
    name: str
    unit_price: Money
    currency: str

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(
            sku=product.sku,
            name=product.name,
            unit_price=product.unit_price,
            currency=product.currency,
        )


class ProductPage(CamelModel):
    products: list[ProductOut]
    next_cursor: str | None
