"""OrdersApiFunction on real PostgreSQL and moto's EventBridge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.aws import publish_outbox

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
ORDER = json.loads((ROOT / "tests/fixtures/place_order.json").read_text())
SCHEMA = json.loads((ROOT / "events/schemas/OrderCreated.json").read_text())


def test_placing_an_order_stores_it_and_publishes_order_created(orders_api, catalog, aws, container):
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
    publish_outbox(container)
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


def test_a_correlation_id_is_generated_when_none_is_sent(orders_api, catalog, aws, container):
    result = orders_api.post("/orders", ORDER)
    assert result.status == 201
    generated = result.headers["x-correlation-id"]
    assert generated and result.body["correlationId"] == generated
    publish_outbox(container)
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


def test_same_idempotency_key_same_body_returns_the_same_order(orders_api, catalog, aws, container):
    first = orders_api.post("/orders", ORDER, headers={"Idempotency-Key": "k-1"})
    again = orders_api.post("/orders", ORDER, headers={"Idempotency-Key": "k-1"})
    assert first.status == again.status == 201
    assert again.body == first.body
    publish_outbox(container)
    assert len(aws.drain("order-created")) == 1


def test_products_are_upserted_by_admins(orders_api, mint):
    admin = mint(sub="admin-1", scope="openid admin")
    body: dict[str, Any] = {"name": "Widget", "unitPrice": "12.50", "currency": "USD"}
    created = orders_api.put("/products/SKU-9", body, token=admin)
    assert created.status == 200
    assert created.body == {"sku": "SKU-9", "name": "Widget", "unitPrice": "12.50", "currency": "USD"}
    updated = orders_api.put("/products/SKU-9", {**body, "unitPrice": "10.00"}, token=admin)
    assert updated.body["unitPrice"] == "10.00"


def test_any_caller_reads_the_catalog_page_by_page_by_sku(orders_api, mint):
    admin = mint(sub="admin-1", scope="openid admin")
    for sku in ("SKU-C", "SKU-A", "SKU-E", "SKU-B", "SKU-D"):
        body = {"name": f"Product {sku}", "unitPrice": "1.00", "currency": "USD"}
        assert orders_api.put(f"/products/{sku}", body, token=admin).status == 200

    seen, cursor = [], None
    while True:
        page = orders_api.get("/products", query="limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, page.body
        assert len(page.body["products"]) <= 2
        seen += page.body["products"]
        cursor = page.body["nextCursor"]
        if cursor is None:
            break
    assert [p["sku"] for p in seen] == ["SKU-A", "SKU-B", "SKU-C", "SKU-D", "SKU-E"]
    assert seen[0] == {"sku": "SKU-A", "name": "Product SKU-A", "unitPrice": "1.00", "currency": "USD"}

    one = orders_api.get("/products/SKU-C")
    assert one.status == 200
    assert one.body == {"sku": "SKU-C", "name": "Product SKU-C", "unitPrice": "1.00", "currency": "USD"}


@pytest.mark.parametrize("sku", ["NOPE-1", "not a sku", "x" * 300])
def test_an_unknown_product_is_not_found(orders_api, catalog, sku):
    result = orders_api.get(f"/products/{sku}")
    assert result.status == 404
    assert result.body["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=x", "cursor=%%%", "cursor=WzFd", "cursor=e30"]
)
def test_a_bad_catalog_page_request_is_422(orders_api, query):
    result = orders_api.get("/products", query=query)
    assert result.status == 422
    assert result.body["error"]["details"][0]["field"] in ("limit", "cursor")


def test_the_catalog_needs_a_token(orders_api):
    assert orders_api.get("/products", token=None).status == 401
    assert orders_api.get("/products/SKU-1", token=None).status == 401


def test_an_admin_reads_any_order_and_a_customer_only_their_own(orders_api, catalog, mint):
    order_id = orders_api.post("/orders", ORDER).body["orderId"]
    as_admin = orders_api.get(f"/orders/{order_id}", token=mint(sub="admin-1", scope="openid admin"))
    assert as_admin.status == 200
    assert as_admin.body["customerId"] == "customer-1"
    # an admin's list is every customer's (tests/integration/test_admin_listing.py)
    listed = orders_api.get("/orders", token=mint(sub="admin-1", scope="admin")).body["orders"]
    assert [o["orderId"] for o in listed] == [order_id]
    assert orders_api.get(f"/orders/{order_id}", token=mint(sub="customer-2")).status == 404
