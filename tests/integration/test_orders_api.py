"""OrdersApiFunction on real PostgreSQL and moto's EventBridge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
ORDER = json.loads((ROOT / "tests/fixtures/place_order.json").read_text())
SCHEMA = json.loads((ROOT / "events/schemas/OrderCreated.json").read_text())


def test_placing_an_order_stores_it_and_publishes_order_created(orders_api, catalog, aws):
    # Given a catalog, when a customer places an order with a correlation id
    result = orders_api.post("/orders", ORDER, headers={"X-Correlation-Id": "corr-123"})

    # Then the order comes back priced from the catalog
    assert result.status == 201, result.body
    order = result.body
    assert result.headers["location"] == f"/orders/{order['orderId']}"
    assert result.headers["x-correlation-id"] == "corr-123"
    assert result.headers["content-type"] == "application/json"
    assert result.headers["access-control-allow-origin"] == "*"
    assert order["status"] == "PENDING"
    assert order["customerId"] == "customer-1"
    assert order["items"] == [
        {"sku": "SKU-1", "quantity": 2, "unitPrice": "12.50", "lineTotal": "25.00"},
        {"sku": "SKU-2", "quantity": 1, "unitPrice": "3.99", "lineTotal": "3.99"},
    ]
    assert order["total"] == "28.99"
    assert order["currency"] == "USD"
    assert order["correlationId"] == "corr-123"
    assert order["shippingAddress"] == ORDER["shippingAddress"]

    # And exactly one OrderCreated reached the bus, valid against its schema
    events = aws.drain("order-created")
    assert len(events) == 1
    event = events[0]
    assert event["source"] == "orders.service"
    assert event["detail-type"] == "OrderCreated"
    jsonschema.validate(event["detail"], SCHEMA)
    detail = event["detail"]
    assert detail["orderId"] == order["orderId"]
    assert detail["customerEmail"] == "ada@example.com"
    assert detail["total"] == "28.99"
    assert detail["metadata"]["correlationId"] == "corr-123"
    assert detail["metadata"]["causationId"] is None
    assert detail["metadata"]["version"] == "1.0"

    # And the owner reads it back
    fetched = orders_api.get(f"/orders/{order['orderId']}")
    assert fetched.status == 200
    assert fetched.body == order


def test_a_correlation_id_is_generated_when_none_is_sent(orders_api, catalog, aws):
    result = orders_api.post("/orders", ORDER)
    assert result.status == 201
    generated = result.headers["x-correlation-id"]
    assert generated and result.body["correlationId"] == generated
    [event] = aws.drain("order-created")
    assert event["detail"]["metadata"]["correlationId"] == generated


def test_orders_list_newest_first_with_a_cursor(orders_api, catalog, mint):
    placed = [orders_api.post("/orders", ORDER).body["orderId"] for _ in range(5)]
    other = mint(sub="customer-2")
    orders_api.post("/orders", ORDER, token=other)

    first = orders_api.get("/orders", query="limit=2")
    assert first.status == 200
    seen = [o["orderId"] for o in first.body["orders"]]
    cursor = first.body["nextCursor"]
    while cursor:
        page = orders_api.get("/orders", query=f"limit=2&cursor={cursor}")
        assert page.status == 200
        seen += [o["orderId"] for o in page.body["orders"]]
        cursor = page.body["nextCursor"]
    assert seen == list(reversed(placed))


def test_someone_elses_order_is_not_found(orders_api, catalog, mint):
    order_id = orders_api.post("/orders", ORDER).body["orderId"]
    result = orders_api.get(f"/orders/{order_id}", token=mint(sub="intruder"))
    assert result.status == 404
    assert result.body["error"]["code"] == "NOT_FOUND"


def test_same_idempotency_key_same_body_returns_the_same_order(orders_api, catalog, aws):
    first = orders_api.post("/orders", ORDER, headers={"Idempotency-Key": "k-1"})
    again = orders_api.post("/orders", ORDER, headers={"Idempotency-Key": "k-1"})
    assert first.status == again.status == 201
    assert again.body == first.body
    assert len(aws.drain("order-created")) == 1


def test_products_are_upserted_by_admins(orders_api, mint):
    admin = mint(sub="admin-1", scope="openid admin")
    body: dict[str, Any] = {"name": "Widget", "unitPrice": "12.50", "currency": "USD"}
    created = orders_api.put("/products/SKU-9", body, token=admin)
    assert created.status == 200
    assert created.body == {"sku": "SKU-9", "name": "Widget", "unitPrice": "12.50", "currency": "USD"}
    updated = orders_api.put("/products/SKU-9", {**body, "unitPrice": "10.00"}, token=admin)
    assert updated.body["unitPrice"] == "10.00"
