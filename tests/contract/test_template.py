"""template.yaml agrees with the code and the contract."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from orderflow.template import functions, load

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_FUNCTIONS = {
    "OrdersApiFunction",
    "OutboxRelayFunction",
    "OrderStatusFunction",
    "InventoryFunction",
    "InventoryApiFunction",
    "NotificationsFunction",
    "ShippingFunction",
    "ShippingApiFunction",
    # the database migrations, inside AWS (CONTRACT: orderflow migrate --stack)
    "MigrationFunction",
}
CONSUMES = {
    "InventoryFunction": {"OrderCreated", "OrderCancelled", "ShipmentDispatched"},
    "NotificationsFunction": {
        "OrderCreated",
        "InventoryReservationFailed",
        "OrderCancelled",
        "ShipmentDispatched",
    },
    "ShippingFunction": {"InventoryReserved", "OrderCancellationRequested"},
    "OrderStatusFunction": {
        "InventoryReserved",
        "InventoryReservationFailed",
        "ShipmentRequested",
        "ShipmentCancelled",
        "ShipmentCancellationRefused",
        "ShipmentDispatched",
        "ShipmentDelivered",
    },
}


def test_the_template_declares_every_function_of_the_contract():
    assert set(functions()) == CONTRACT_FUNCTIONS


@pytest.mark.parametrize("logical_id", sorted(CONTRACT_FUNCTIONS))
def test_each_handler_resolves_from_its_code_uri(logical_id):
    fn = functions()[logical_id]
    module_file = fn.code_uri / (fn.module.replace(".", "/") + ".py")
    assert module_file.is_file(), f"{logical_id}: {module_file} is missing"
    module = importlib.import_module(fn.module)
    assert callable(getattr(module, fn.attribute)), f"{logical_id}: {fn.handler} is not callable"


def test_every_function_uses_the_common_layer_built_from_services_common():
    doc = load()
    layer = doc["Resources"]["CommonLayer"]
    assert layer["Properties"]["ContentUri"] == "services/common/"
    assert (ROOT / "services/common/requirements.txt").is_file()
    for fn in functions().values():
        assert {"Ref": "CommonLayer"} in fn.layers


@pytest.mark.parametrize("logical_id", sorted(CONSUMES))
def test_each_consumer_rule_selects_exactly_the_contracts_events(logical_id):
    [pattern] = functions()[logical_id].rule_patterns()
    schemas = {p.stem: json.loads(p.read_text()) for p in (ROOT / "events/schemas").glob("*.json")}
    matched = {
        name
        for name, schema in schemas.items()
        if schema["x-source"] in pattern["source"] and name in pattern["detail-type"]
    }
    assert matched == CONSUMES[logical_id]
