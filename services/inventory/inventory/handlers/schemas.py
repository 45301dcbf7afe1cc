"""The inventory API's request and response bodies (camelCase JSON)."""

from __future__ import annotations

from pydantic import Field

from common.events import CamelModel, JsonInt, RequestModel
from inventory.domain.model import StockLevel

MAX_ON_HAND = 2**31 - 1  # the column is a PostgreSQL integer


class PutStockRequest(RequestModel):
    on_hand: JsonInt = Field(ge=0, le=MAX_ON_HAND, strict=True)


class StockOut(CamelModel):
    sku: str
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, level: StockLevel) -> StockOut:
        return cls(sku=level.sku, on_hand=level.on_hand, reserved=level.reserved, available=level.available)
