"""Money per currency through OrdersApiFunction, on real PostgreSQL and moto's EventBridge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.aws import publish_outbox

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "events/schemas/OrderCreated.json").read_text())
ADDRESS = {
    "name": "Ada",
    "line1": "1 Main St",
    "line2": None,
    "city": "Tokyo",
    "postalCode": "100-0001",
    "country": "JP",
}


@pytest.fixture
def admin(mint: Any) -> str:
    return mint(sub="admin-1", scope="admin")


def put_product(orders_api: Any, admin: str, sku: str, price: Any, currency: str) -> Any:
    return orders_api.put(
        f"/products/{sku}", {"name": f"Product {sku}", "unitPrice": price, "currency": currency}, token=admin
    )


@pytest.mark.parametrize(
    ("price", "currency"), [("1200", "JPY"), ("12.50", "USD"), ("1.250", "KWD"), ("0.0001", "CLF")]
)
def test_a_price_with_its_currency_s_digits_is_stored_and_read_back_as_sent(
    orders_api, admin, price, currency
):
    put = put_product(orders_api, admin, "SKU-M", price, currency)
    assert put.status == 200, put.body
    assert put.body == {"sku": "SKU-M", "name": "Product SKU-M", "unitPrice": price, "currency": currency}
    assert orders_api.get("/products/SKU-M").body == put.body


@pytest.mark.parametrize(
    ("price", "currency", "field", "says"),
    [
        ("1200.50", "JPY", "unitPrice", "whole number of JPY"),
        ("1200.00", "JPY", "unitPrice", "whole number of JPY"),
        ("1.25", "KWD", "unitPrice", "3 decimal places for KWD"),
        ("12.5", "USD", "unitPrice", "2 decimal places for USD"),
        ("12.500", "USD", "unitPrice", "2 decimal places for USD"),
        (12.5, "USD", "unitPrice", "not a number"),
        ("1000000.01", "USD", "unitPrice", "at most 1000000 USD"),
        ("1000001", "JPY", "unitPrice", "at most 1000000 JPY"),
        ("12.50", "ZZZ", "currency", "ISO 4217"),
        ("1", "XAU", "currency", "ISO 4217"),
    ],
)
def test_a_price_off_its_currency_is_422_naming_the_field(orders_api, admin, price, currency, field, says):
    result = put_product(orders_api, admin, "SKU-M", price, currency)
    assert result.status == 422, result.body
    details = result.body["error"]["details"]
    assert [d["field"] for d in details] == [field]
    assert says in details[0]["message"]
    assert orders_api.get("/products/SKU-M").status == 404


def test_an_order_in_yen_totals_in_yen(orders_api, admin, aws, container):
    assert put_product(orders_api, admin, "JP-1", "1200", "JPY").status == 200
    assert put_product(orders_api, admin, "JP-2", "980", "JPY").status == 200
    body = {
        "items": [{"sku": "JP-1", "quantity": 1000}, {"sku": "JP-2", "quantity": 3}],
        "shippingAddress": ADDRESS,
    }

    placed = orders_api.post("/orders", body)

    assert placed.status == 201, placed.body
    order = placed.body
    assert order["currency"] == "JPY"
    assert order["items"] == [
        {"sku": "JP-1", "quantity": 1000, "unitPrice": "1200", "lineTotal": "1200000"},
        {"sku": "JP-2", "quantity": 3, "unitPrice": "980", "lineTotal": "2940"},
    ]
    assert order["total"] == "1202940"
    assert orders_api.get(f"/orders/{order['orderId']}").body == order  # as stored

    publish_outbox(container)
    [event] = aws.drain("order-created")
    jsonschema.validate(event["detail"], SCHEMA)
    assert event["detail"]["total"] == "1202940"
    assert [i["unitPrice"] for i in event["detail"]["items"]] == ["1200", "980"]


def test_an_order_in_dinars_keeps_the_third_digit(orders_api, admin):
    assert put_product(orders_api, admin, "KW-1", "0.125", "KWD").status == 200
    body = {"items": [{"sku": "KW-1", "quantity": 7}], "shippingAddress": ADDRESS}
    order = orders_api.post("/orders", body).body
    assert (order["items"][0]["lineTotal"], order["total"]) == ("0.875", "0.875")


def test_one_order_has_one_currency(orders_api, admin):
    assert put_product(orders_api, admin, "JP-1", "1200", "JPY").status == 200
    assert put_product(orders_api, admin, "US-1", "12.00", "USD").status == 200
    body = {
        "items": [{"sku": "JP-1", "quantity": 1}, {"sku": "US-1", "quantity": 1}],
        "shippingAddress": ADDRESS,
    }
    result = orders_api.post("/orders", body)
    assert result.status == 422
    assert "JPY" in result.body["error"]["message"] and "USD" in result.body["error"]["message"]
