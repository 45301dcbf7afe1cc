"""The HTTP API's request and response bodies (camelCase JSON)."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from common.events import (
    CamelModel,
    CurrencyCode,
    JsonInt,
    PricedModel,
    RequestModel,
    ShippingAddress,
    Sku,
    UtcDatetime,
)
from common.money import Money
from orders.domain.model import Order, OrderStatus, Product

# In the currency's major unit, whatever it is: it keeps a total (50 lines of 1000 at
# most) well within the stored NUMERIC's 14 integer digits.
MAX_UNIT_PRICE = Decimal(1_000_000)


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


class PutProductRequest(RequestModel, PricedModel):
    AMOUNTS: ClassVar[tuple[str, ...]] = ("unit_price",)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    unit_price: Money
    currency: CurrencyCode

    @field_validator("unit_price")
    @classmethod
    def _price_range(cls, value: Money) -> Money:
        # Not Money when the currency is invalid (that is the error then, not the price).
        if isinstance(value, Money) and value.amount > MAX_UNIT_PRICE:
            raise ValueError(f"must be at most {MAX_UNIT_PRICE} {value.currency}")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        # The document states the bound too, in any currency: at most 1000000 major units
        # (leading zeros allowed; the digits per currency are the other rules' business).
        schema = super().__get_pydantic_json_schema__(core_schema, handler)
        top = str(int(MAX_UNIT_PRICE))
        assert top == "1" + "0" * (len(top) - 1), "the pattern below reads a power of ten"
        bound = rf"^0*(?:[0-9]{{1,{len(top) - 1}}}(?:\.[0-9]+)?|{top}(?:\.0+)?)$"
        handler.resolve_ref_schema(schema).setdefault("allOf", []).append(
            {"properties": {"unitPrice": {"pattern": bound}}}
        )
        return schema


class CancelOrderRequest(RequestModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class OrderItemOut(CamelModel):
    sku: str
    quantity: int
    unit_price: Money
    line_total: Money


class OrderOut(PricedModel):
    AMOUNTS: ClassVar[tuple[str, ...]] = ("total",)
    ITEM_AMOUNTS: ClassVar[dict[str, tuple[str, ...]]] = {"items": ("unit_price", "line_total")}

    order_id: uuid.UUID
    customer_id: str
    status: str
    rejection_reason: str | None = None
    cancellation_reason: str | None = None
    items: list[OrderItemOut]
    total: Money
    currency: CurrencyCode
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


class ProductOut(PricedModel):
    AMOUNTS: ClassVar[tuple[str, ...]] = ("unit_price",)

    sku: str
    name: str
    unit_price: Money
    currency: CurrencyCode

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
