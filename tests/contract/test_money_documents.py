"""The checked-in documents say the money rules: an amount has exactly its currency's ISO
4217 minor-unit digits, and the currency is an ISO 4217 code that has a minor unit."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER_CREATED = json.loads((ROOT / "events/schemas/OrderCreated.json").read_text())
OPENAPI = json.loads((ROOT / "openapi/orderflow-api.json").read_text())

CASES = [
    # currency, unit price, total, what is wrong (None: nothing)
    ("JPY", "1200", "2400", None),
    ("JPY", "1200.50", "2401", "unitPrice"),  # too many digits for the yen
    ("JPY", "1200", "2400.00", "total"),
    ("USD", "12.50", "25.00", None),
    ("USD", "12.5", "25.00", "unitPrice"),  # too few
    ("USD", "12.50", "25.000", "total"),  # too many
    ("KWD", "1.250", "2.500", None),
    ("KWD", "1.25", "2.500", "unitPrice"),
    ("CLF", "0.0001", "0.0002", None),
    ("ZZZ", "12.50", "25.00", "currency"),  # no such currency
    ("XAU", "1", "2", "currency"),  # an ISO code with no minor unit
]


def order_created(currency: str, unit_price: str, total: str) -> dict[str, Any]:
    return {
        "metadata": {
            "eventId": str(uuid.uuid4()),
            "correlationId": "corr-1",
            "causationId": None,
            "timestamp": "2026-12-04T12:00:00Z",
            "version": "1.0",
        },
        "orderId": str(uuid.uuid4()),
        "customerId": "customer-1",
        "customerEmail": "ada@example.com",
        "items": [
            {"sku": "SKU-1", "quantity": 1, "unitPrice": unit_price},
            {"sku": "SKU-2", "quantity": 1, "unitPrice": unit_price},
        ],
        "total": total,
        "currency": currency,
        "shippingAddress": {
            "name": "A",
            "line1": "1 Main St",
            "city": "L",
            "postalCode": "N1",
            "country": "GB",
        },
    }


def component(name: str) -> jsonschema.Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(("currency", "unit_price", "total", "wrong"), CASES)
def test_the_order_created_schema_takes_each_currency_s_own_digits_only(
    currency: str, unit_price: str, total: str, wrong: str | None
) -> None:
    validator = jsonschema.Draft202012Validator(ORDER_CREATED)
    assert validator.is_valid(order_created(currency, unit_price, total)) is (wrong is None)


@pytest.mark.parametrize(("currency", "unit_price", "total", "wrong"), CASES)
def test_the_api_document_says_the_same_for_products_and_orders(
    currency: str, unit_price: str, total: str, wrong: str | None
) -> None:
    product = {"name": "Widget", "unitPrice": unit_price, "currency": currency}
    product_ok = wrong not in ("unitPrice", "currency")
    assert component("PutProductRequest").is_valid(product) is product_ok
    assert component("ProductOut").is_valid({"sku": "SKU-1", **product}) is product_ok
    order = {
        **order_created(currency, unit_price, total),
        "status": "PENDING",
        "createdAt": "2026-12-04T12:00:00Z",
        "updatedAt": "2026-12-04T12:00:00Z",
        "correlationId": "corr-1",
    }
    order["items"] = [{**item, "lineTotal": unit_price} for item in order["items"]]
    assert component("OrderOut").is_valid(order) is (wrong is None)


def test_a_line_total_off_its_currency_is_refused_too() -> None:
    order = order_created("JPY", "1200", "2400")
    order.update(status="PENDING", createdAt="2026-12-04T12:00:00Z", updatedAt="2026-12-04T12:00:00Z")
    order["correlationId"] = "corr-1"
    order["items"] = [{**item, "lineTotal": "1200"} for item in order["items"]]
    assert component("OrderOut").is_valid(order)
    order["items"][1]["lineTotal"] = "1200.00"
    assert not component("OrderOut").is_valid(order)
