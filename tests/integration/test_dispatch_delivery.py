"""Dispatch and delivery on a real PostgreSQL: ShippingApiFunction, then the stock.

The story of one order from its reservation to its delivery, through the admin
shipping API (the real handler, with real tokens) and InventoryFunction's handler,
with every repeat and refusal the contract names.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import jsonschema
import pytest
from sqlalchemy import text

from common.events import (
    EventMetadata,
    OrderCreated,
    OrderCreatedItem,
    ShipmentDispatched,
    ShippingAddress,
)
from common.money import Money
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.domain.commands import SetStock
from inventory.domain.model import StockLevel
from inventory.handlers import reserve
from inventory.usecases import Handled, reserve_stock, set_stock
from orderflow.paths import SCHEMAS_DIR
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.usecases import request_shipment
from tests.support.api import HttpClient
from tests.support.events import eventbridge_event, handled

pytestmark = [pytest.mark.db, pytest.mark.aws]

ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB"
)


def order_created(order_id: uuid.UUID, *items: tuple[str, int]) -> OrderCreated:
    return OrderCreated(
        order_id=order_id,
        customer_id="customer-1",
        customer_email="ada@example.com",
        items=[OrderCreatedItem(sku=s, quantity=q, unit_price=Money.parse("1.00", "USD")) for s, q in items],
        total=Money(100 * sum(q for _, q in items), "USD"),
        currency="USD",
        shipping_address=ADDRESS,
        metadata=EventMetadata.new("corr-dispatch"),
    )


@pytest.fixture
def shipping_api(container: Any, mint: Any) -> HttpClient:
    from shipping.handlers.api import handler

    return HttpClient(handler, token=mint(sub="admin-1", scope="openid admin"))


def reserved_and_requested(engine: Any, order_id: uuid.UUID, *items: tuple[str, int]) -> None:
    """The order's stock reserved and its shipment requested, as the consumers do it."""
    result = reserve_stock(order_created(order_id, *items), InventoryUnitOfWork(engine))
    assert result.handled is Handled.RESERVED
    request_shipment(result.published, ShippingUnitOfWork(engine))  # type: ignore[arg-type]


def stock(engine: Any, sku: str) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT on_hand, reserved FROM inventory.stock WHERE sku = :s"), {"s": sku}
        ).one()
    return row.on_hand, row.reserved


def outbox(engine: Any, detail_type: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            r.detail
            for r in conn.execute(
                text("SELECT detail FROM eventing.outbox WHERE detail_type = :t ORDER BY id"),
                {"t": detail_type},
            )
        ]


def test_an_order_is_dispatched_once_its_stock_settles_once_then_delivered(container, engine, shipping_api):
    # Given 10 and 5 in stock and an order for 3 and 5, reserved, its shipment requested
    set_stock(SetStock("SKU-A", 10), InventoryUnitOfWork(engine))
    set_stock(SetStock("SKU-B", 5), InventoryUnitOfWork(engine))
    order_id = uuid.uuid4()
    reserved_and_requested(engine, order_id, ("SKU-A", 3), ("SKU-B", 5))
    assert stock(engine, "SKU-B") == (5, 5)

    requested = shipping_api.get(f"/shipments/{order_id}")
    assert requested.status == 200
    assert requested.body["status"] == "REQUESTED" and requested.body["requestedAt"]
    assert requested.body["dispatchedAt"] is None and requested.body["carrier"] is None

    # When an admin dispatches it (twice, the same body)
    body = {"carrier": "DHL", "trackingNumber": "JD0146"}
    first = shipping_api.post(f"/shipments/{order_id}/dispatch", body)
    again = shipping_api.post(f"/shipments/{order_id}/dispatch", body)

    # Then it is DISPATCHED, the repeat answers it unchanged, one ShipmentDispatched exists
    assert first.status == 200, first.body
    assert first.body["status"] == "DISPATCHED" and first.body["carrier"] == "DHL"
    assert first.body["trackingNumber"] == "JD0146" and first.body["dispatchedAt"]
    assert (again.status, again.body) == (200, first.body)
    [detail] = outbox(engine, "ShipmentDispatched")
    jsonschema.validate(detail, json.loads((SCHEMAS_DIR / "ShipmentDispatched.json").read_text()))
    assert detail["carrier"] == "DHL" and detail["trackingNumber"] == "JD0146"
    assert detail["metadata"]["correlationId"] == "corr-dispatch"  # the order's, carried on

    # another carrier or tracking number once dispatched: 409
    other = shipping_api.post(f"/shipments/{order_id}/dispatch", {**body, "trackingNumber": "X"})
    assert other.status == 409 and other.body["error"]["code"] == "SHIPMENT_STATE_CONFLICT"

    # When InventoryFunction receives ShipmentDispatched, twice, and under a new eventId
    event = eventbridge_event(ShipmentDispatched.model_validate(detail))
    assert handled(reserve.consumer, event, container) == Handled.CONSUMED
    assert handled(reserve.consumer, event, container) == Handled.DUPLICATE_EVENT
    twin = ShipmentDispatched.model_validate({**detail, "metadata": EventMetadata.new("corr-dispatch")})
    assert handled(reserve.consumer, eventbridge_event(twin), container) == Handled.ALREADY_SETTLED

    # Then onHand and reserved fell together, once
    assert stock(engine, "SKU-A") == (7, 0)
    assert stock(engine, "SKU-B") == (0, 0)
    # And a physical recount after the dispatch is accepted
    assert set_stock(SetStock("SKU-B", 0), InventoryUnitOfWork(engine)) == StockLevel("SKU-B", 0, 0)
    assert set_stock(SetStock("SKU-A", 5), InventoryUnitOfWork(engine)) == StockLevel("SKU-A", 5, 0)

    # When it is delivered (twice)
    delivered = shipping_api.post(f"/shipments/{order_id}/deliver")
    assert delivered.status == 200 and delivered.body["status"] == "DELIVERED"
    assert delivered.body["deliveredAt"]
    assert shipping_api.post(f"/shipments/{order_id}/deliver").body == delivered.body
    assert len(outbox(engine, "ShipmentDelivered")) == 1
    # a delivered shipment still answers the same dispatch as it is, and refuses another
    assert shipping_api.post(f"/shipments/{order_id}/dispatch", body).status == 200
    assert shipping_api.post(f"/shipments/{order_id}/dispatch", {**body, "carrier": "UPS"}).status == 409
    assert shipping_api.get(f"/shipments/{order_id}").body == delivered.body


def test_delivery_before_dispatch_is_409_and_changes_nothing(container, engine, shipping_api):
    set_stock(SetStock("SKU-A", 10), InventoryUnitOfWork(engine))
    order_id = uuid.uuid4()
    reserved_and_requested(engine, order_id, ("SKU-A", 1))
    result = shipping_api.post(f"/shipments/{order_id}/deliver")
    assert result.status == 409, result.body
    assert shipping_api.get(f"/shipments/{order_id}").body["status"] == "REQUESTED"
    assert outbox(engine, "ShipmentDelivered") == []


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_order_without_a_shipment_record_is_404(shipping_api, order_id):
    for call in (
        lambda: shipping_api.get(f"/shipments/{order_id}"),
        lambda: shipping_api.post(
            f"/shipments/{order_id}/dispatch", {"carrier": "DHL", "trackingNumber": "1"}
        ),
        lambda: shipping_api.post(f"/shipments/{order_id}/deliver"),
    ):
        result = call()
        assert result.status == 404 and result.body["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"carrier": "DHL"},
        {"carrier": "", "trackingNumber": "1"},
        {"carrier": "D", "trackingNumber": "1", "x": 1},
    ],
)
def test_a_bad_dispatch_body_is_422(shipping_api, body):
    result = shipping_api.post(f"/shipments/{uuid.uuid4()}/dispatch", body)
    assert result.status == 422 and result.body["error"]["details"]


def test_the_shipping_api_is_for_admins_only(shipping_api, mint):
    order_id = uuid.uuid4()
    customer = mint(sub="customer-1")
    assert shipping_api.get(f"/shipments/{order_id}", token=customer).status == 403
    assert shipping_api.post(f"/shipments/{order_id}/deliver", token=customer).status == 403
    assert shipping_api.get(f"/shipments/{order_id}", token=None).status == 401
