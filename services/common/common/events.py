"""The published language: every domain event of the suite, with its envelope.

Each event is a pydantic model of the EventBridge ``detail``: business fields plus a
``metadata`` object. ``events/schemas/<DetailType>.json`` is generated from these
models (``orderflow schemas``) and never edited by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from common.countries import ISO_3166_ALPHA2
from common.iso4217 import MINOR_UNITS
from common.money import CURRENCY_PATTERN, Money, Priced, currency_rules, is_currency

EVENT_VERSION = "1.0"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset")
    return value.astimezone(UTC)


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(lambda v: v.astimezone(UTC).isoformat().replace("+00:00", "Z"), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _json_integer(value: Any) -> Any:
    # JSON counts 2.0 as the integer 2 (JSON Schema's "integer" takes it); a strict int field
    # still refuses true, "2" and 2.5.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


def _country(value: str) -> str:
    if value not in ISO_3166_ALPHA2:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. GB")
    return value


CountryCode = Annotated[
    str,
    AfterValidator(_country),
    # The list itself, not only its shape: "AA" fits [A-Z]{2} and is refused.
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{2}$", "enum": sorted(ISO_3166_ALPHA2)}),
]


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError("must be an ISO 4217 currency code with a minor unit, e.g. USD")
    return value


CurrencyCode = Annotated[
    str,
    Field(pattern=CURRENCY_PATTERN),
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "enum": sorted(MINOR_UNITS), "examples": ["USD"]}),
]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python.

    Unknown fields are ignored: consumers are tolerant readers, so a producer can add
    a field without breaking them (a breaking change gets a new ``version``).
    """

    # defer_build: a model's validator is built on its first use, so a function pays at
    # cold start only for the events and bodies it handles, not for all of them.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)


NO_NUL = "^[^\\u0000]*$"


def _document_no_nul(schema: dict[str, Any]) -> None:
    """Say in the schema what ``TextModel`` refuses: a free-text string holding U+0000."""
    for prop in schema.get("properties", {}).values():
        for alternative in prop.get("anyOf", [prop]):
            if alternative.get("type") == "string" and not {"pattern", "format", "enum"} & alternative.keys():
                alternative["pattern"] = NO_NUL


class TextModel(CamelModel):
    """A model of free text from customers: U+0000 is refused at the boundary, since
    PostgreSQL's text and JSONB cannot store it (the insert would fail with a 500)."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        # Not json_schema_extra: PricedModel's own would replace it in a model that is both.
        schema = handler(core_schema)
        _document_no_nul(handler.resolve_ref_schema(schema))
        return schema

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value


class RequestModel(TextModel):
    """An HTTP request body: strict, so a misspelt field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


def _wire(name: str) -> str:
    return to_camel(name)


def _money_rules(schema: dict[str, Any], model: type[BaseModel]) -> None:
    amounts = getattr(model, "AMOUNTS", ())
    items = getattr(model, "ITEM_AMOUNTS", {})
    if amounts or items:
        schema["allOf"] = currency_rules(
            [_wire(n) for n in amounts], {_wire(a): [_wire(n) for n in names] for a, names in items.items()}
        )


class PricedModel(CamelModel):
    """A model whose amounts (fields of type ``Money``) are in its ``currency`` field's
    currency: each must have exactly that currency's minor-unit digits, and an error
    names the amount's own field (``unitPrice``, ``items.0.unitPrice``). Its JSON Schema
    says which digits go with which currency. ``AMOUNTS`` are its own amount fields,
    ``ITEM_AMOUNTS`` those of the items of its list fields."""

    AMOUNTS: ClassVar[tuple[str, ...]] = ()
    ITEM_AMOUNTS: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Events take the two-place form of before per-currency money too, where it is exact.
    TWO_PLACES_TOO: ClassVar[bool] = False

    model_config = ConfigDict(json_schema_extra=_money_rules)

    @model_validator(mode="before")
    @classmethod
    def _price_in_currency(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        code = data.get(_wire("currency"), data.get("currency"))
        currency = code if is_currency(code) else None

        def pair(fields: dict[str, Any], name: str) -> None:
            key = _wire(name) if _wire(name) in fields else name
            if key in fields:
                fields[key] = Priced(fields[key], currency, cls.TWO_PLACES_TOO)

        for name in cls.AMOUNTS:
            pair(data, name)
        for array, names in cls.ITEM_AMOUNTS.items():
            key = _wire(array) if _wire(array) in data else array
            if not isinstance(data.get(key), list):
                continue
            priced = []
            for item in data[key]:
                if isinstance(item, BaseModel):  # built in Python: kept if in this currency
                    amounts = [getattr(item, n, None) for n in names]
                    if all(isinstance(a, Money) and a.currency == currency for a in amounts):
                        priced.append(item)
                        continue
                    item = {f.alias or n: getattr(item, n) for n, f in type(item).model_fields.items()}
                if isinstance(item, dict):
                    item = dict(item)
                    for name in names:
                        pair(item, name)
                priced.append(item)
            data[key] = priced
        return data


class EventMetadata(CamelModel):
    event_id: uuid.UUID
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None
    timestamp: UtcDatetime
    version: Literal["1.0"]

    @classmethod
    def new(cls, correlation_id: str, causation_id: str | None = None) -> EventMetadata:
        return cls(
            event_id=uuid.uuid4(),
            correlation_id=correlation_id,
            causation_id=causation_id,
            timestamp=datetime.now(UTC),
            version=EVENT_VERSION,
        )

    def caused(self) -> EventMetadata:
        """Metadata for an event that this one caused: same correlation, this as cause."""
        return EventMetadata.new(self.correlation_id, causation_id=str(self.event_id))


class ShippingAddress(TextModel):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: CountryCode


class DomainEvent(CamelModel):
    """Base of every event detail. Subclasses name their source and detail-type."""

    SOURCE: ClassVar[str]
    DETAIL_TYPE: ClassVar[str]

    metadata: EventMetadata


class OrderCreatedItem(CamelModel):
    sku: Sku
    quantity: int = Field(ge=1, le=1000)
    unit_price: Money


class OrderCreated(DomainEvent, PricedModel):
    """An order was stored. Every amount is in the order's currency, with exactly that
    currency's ISO 4217 minor-unit digits."""

    AMOUNTS: ClassVar[tuple[str, ...]] = ("total",)
    ITEM_AMOUNTS: ClassVar[dict[str, tuple[str, ...]]] = {"items": ("unit_price",)}
    TWO_PLACES_TOO: ClassVar[bool] = True

    SOURCE: ClassVar[str] = "orders.service"
    DETAIL_TYPE: ClassVar[str] = "OrderCreated"

    order_id: uuid.UUID
    customer_id: str = Field(min_length=1, max_length=256)
    customer_email: str = Field(min_length=3, max_length=320)
    items: list[OrderCreatedItem] = Field(min_length=1, max_length=50)
    total: Money
    currency: CurrencyCode
    shipping_address: ShippingAddress


class ReservedItem(CamelModel):
    sku: Sku
    quantity: int = Field(ge=1, le=1000)


class InventoryReserved(DomainEvent):
    SOURCE: ClassVar[str] = "inventory.service"
    DETAIL_TYPE: ClassVar[str] = "InventoryReserved"

    order_id: uuid.UUID
    customer_id: str = Field(min_length=1, max_length=256)
    items: list[ReservedItem] = Field(min_length=1, max_length=50)
    # Carried along so that shipping needs no other service's data.
    shipping_address: ShippingAddress


class ShortItem(CamelModel):
    sku: Sku
    requested: int = Field(ge=1)
    available: int = Field(ge=0)


class InventoryReservationFailed(DomainEvent):
    SOURCE: ClassVar[str] = "inventory.service"
    DETAIL_TYPE: ClassVar[str] = "InventoryReservationFailed"

    order_id: uuid.UUID
    customer_id: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=1000)
    short_items: list[ShortItem] = Field(min_length=1, max_length=50)


class ShipmentRequested(DomainEvent):
    SOURCE: ClassVar[str] = "shipping.service"
    DETAIL_TYPE: ClassVar[str] = "ShipmentRequested"

    order_id: uuid.UUID
    shipment_id: uuid.UUID
    items: list[ReservedItem] = Field(min_length=1, max_length=50)
    shipping_address: ShippingAddress


class ShipmentDispatched(DomainEvent):
    """The goods left the warehouse: the shipping service is the authority on that."""

    SOURCE: ClassVar[str] = "shipping.service"
    DETAIL_TYPE: ClassVar[str] = "ShipmentDispatched"

    order_id: uuid.UUID
    shipment_id: uuid.UUID
    items: list[ReservedItem] = Field(min_length=1, max_length=50)
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    dispatched_at: UtcDatetime


class ShipmentDelivered(DomainEvent):
    SOURCE: ClassVar[str] = "shipping.service"
    DETAIL_TYPE: ClassVar[str] = "ShipmentDelivered"

    order_id: uuid.UUID
    shipment_id: uuid.UUID
    delivered_at: UtcDatetime


OrderStatus = Literal[
    "PENDING", "CONFIRMED", "SHIPPING", "SHIPPED", "DELIVERED", "REJECTED", "CANCELLING", "CANCELLED"
]
CancellationReason = Annotated[str, Field(min_length=1, max_length=500)]


class OrderStatusChanged(DomainEvent):
    SOURCE: ClassVar[str] = "orders.service"
    DETAIL_TYPE: ClassVar[str] = "OrderStatusChanged"

    order_id: uuid.UUID
    customer_id: str = Field(min_length=1, max_length=256)
    previous_status: OrderStatus
    status: OrderStatus
    rejection_reason: str | None = None
    cancellation_reason: CancellationReason | None = None


# --- cancellation: orders asks, shipping decides (only it knows whether goods left) ---


class OrderCancellationRequested(DomainEvent):
    """A customer or an admin asked to cancel; the order is now CANCELLING."""

    SOURCE: ClassVar[str] = "orders.service"
    DETAIL_TYPE: ClassVar[str] = "OrderCancellationRequested"

    order_id: uuid.UUID
    customer_id: str = Field(min_length=1, max_length=256)
    reason: CancellationReason | None = None


class ShipmentCancelled(DomainEvent):
    """No goods will leave for this order: its shipment was cancelled, or (``shipmentId``
    null) none had been requested and none may be now."""

    SOURCE: ClassVar[str] = "shipping.service"
    DETAIL_TYPE: ClassVar[str] = "ShipmentCancelled"

    order_id: uuid.UUID
    shipment_id: uuid.UUID | None
    cancelled_at: UtcDatetime


class ShipmentCancellationRefused(DomainEvent):
    """The goods had already left: the order carries on to SHIPPED."""

    SOURCE: ClassVar[str] = "shipping.service"
    DETAIL_TYPE: ClassVar[str] = "ShipmentCancellationRefused"

    order_id: uuid.UUID
    shipment_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=1000)


class OrderCancelled(DomainEvent):
    SOURCE: ClassVar[str] = "orders.service"
    DETAIL_TYPE: ClassVar[str] = "OrderCancelled"

    order_id: uuid.UUID
    customer_id: str = Field(min_length=1, max_length=256)
    cancellation_reason: CancellationReason | None = None


class InventoryReleased(DomainEvent):
    """A cancelled order's reservation was given back to the stock."""

    SOURCE: ClassVar[str] = "inventory.service"
    DETAIL_TYPE: ClassVar[str] = "InventoryReleased"

    order_id: uuid.UUID
    items: list[ReservedItem] = Field(min_length=1, max_length=50)


ALL_EVENTS: tuple[type[DomainEvent], ...] = (
    OrderCreated,
    InventoryReserved,
    InventoryReservationFailed,
    ShipmentRequested,
    OrderStatusChanged,
    ShipmentDispatched,
    ShipmentDelivered,
    OrderCancellationRequested,
    ShipmentCancelled,
    ShipmentCancellationRefused,
    OrderCancelled,
    InventoryReleased,
)


def event_json_schema(event_type: type[DomainEvent]) -> dict[str, Any]:
    """The JSON Schema of an event's ``detail``, as checked in under events/schemas/."""
    schema = event_type.model_json_schema(by_alias=True, mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://orderflow.example/events/{event_type.DETAIL_TYPE}.json",
        "x-source": event_type.SOURCE,
        "x-detail-type": event_type.DETAIL_TYPE,
        **schema,
    }
