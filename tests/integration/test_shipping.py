"""ShippingFunction on a real PostgreSQL: one shipment per reserved order."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import jsonschema
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common import bootstrap
from common.bootstrap import Container
from common.consumer import InvalidEvent
from common.events import EventMetadata, InventoryReserved, ReservedItem, ShippingAddress
from common.settings import Settings
from orderflow.lambda_runtime import LambdaContext
from orderflow.paths import SCHEMAS_DIR
from shipping.handlers import request
from tests.support.events import deliver, eventbridge_event

pytestmark = [pytest.mark.db]

ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB"
)
SCHEMA = json.loads((SCHEMAS_DIR / "ShipmentRequested.json").read_text())


def inventory_reserved(order_id: uuid.UUID | None = None) -> InventoryReserved:
    return InventoryReserved(
        order_id=order_id or uuid.uuid4(),
        customer_id="customer-1",
        items=[ReservedItem(sku="SKU-1", quantity=2), ReservedItem(sku="SKU-2", quantity=1)],
        shipping_address=ADDRESS,
        metadata=EventMetadata.new("corr-ship", causation_id=str(uuid.uuid4())),
    )


def invoke(event: dict[str, Any]) -> dict[str, str]:
    """What ShippingFunction did with ``event``, delivered as a batch of one."""
    context = LambdaContext(function_name="ShippingFunction")
    return {"handled": deliver(request.consumer, event, bootstrap.container(), context).log["handled"]}


def shipments(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM shipping.shipments ORDER BY created_at")).all()


def outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT source, detail_type, detail FROM eventing.outbox ORDER BY id")).all()


def test_a_reserved_order_gets_one_shipment_and_a_valid_shipment_requested(deps, engine):
    # Given an order whose stock is reserved
    reserved = inventory_reserved()

    # When ShippingFunction receives InventoryReserved
    assert invoke(eventbridge_event(reserved)) == {"handled": "REQUESTED"}

    # Then one shipment is recorded
    [shipment] = shipments(engine)
    assert shipment.order_id == reserved.order_id
    assert shipment.status == "REQUESTED"
    assert shipment.correlation_id == "corr-ship"
    assert shipment.items == [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]
    assert shipment.shipping_address == ADDRESS.model_dump(mode="json", by_alias=True)
    # And ShipmentRequested waits in the outbox, valid against its schema
    [row] = outbox(engine)
    assert (row.source, row.detail_type) == ("shipping.service", "ShipmentRequested")
    jsonschema.validate(row.detail, SCHEMA)
    assert row.detail["shipmentId"] == str(shipment.shipment_id)
    assert row.detail["orderId"] == str(reserved.order_id)
    assert row.detail["items"] == shipment.items
    assert row.detail["metadata"]["correlationId"] == "corr-ship"
    assert row.detail["metadata"]["causationId"] == str(reserved.metadata.event_id)


def test_duplicates_even_under_new_event_ids_keep_one_shipment_per_order(deps, engine):
    # Given a shipment already requested for an order
    reserved = inventory_reserved()
    event = eventbridge_event(reserved)
    invoke(event)
    [first] = shipments(engine)

    # When the same event arrives again, and the same order under a new eventId
    assert invoke(event) == {"handled": "DUPLICATE_EVENT"}
    again = reserved.model_copy(update={"metadata": EventMetadata.new("corr-ship")})
    assert invoke(eventbridge_event(again)) == {"handled": "ORDER_ALREADY_SHIPPING"}

    # Then nothing changed
    assert shipments(engine) == [first]
    assert len(outbox(engine)) == 1


def test_concurrent_duplicates_keep_one_shipment(db, engine):
    # Given one order's InventoryReserved delivered 8 times at once, half under new eventIds
    reserved = inventory_reserved()
    events = [
        eventbridge_event(
            reserved if i % 2 else reserved.model_copy(update={"metadata": EventMetadata.new("c")})
        )
        for i in range(8)
    ]
    start = threading.Barrier(len(events))
    errors: list[BaseException] = []

    def work(event: dict[str, Any]) -> None:
        deps = Container(settings=Settings(DATABASE_URL=db))
        try:
            start.wait()
            deliver(request.consumer, event, deps)
        except BaseException as exc:
            errors.append(exc)
        finally:
            deps.engine.dispose()

    threads = [threading.Thread(target=work, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # Then exactly one shipment and one ShipmentRequested exist
    assert not errors, errors
    assert len(shipments(engine)) == 1
    assert len(outbox(engine)) == 1


def test_an_event_for_another_consumer_is_refused_and_changes_nothing(deps, engine):
    event = eventbridge_event(inventory_reserved())
    with pytest.raises(InvalidEvent):
        invoke({**event, "detail-type": "InventoryReservationFailed"})
    bad = eventbridge_event(inventory_reserved())
    bad["detail"]["items"] = []
    with pytest.raises(InvalidEvent):
        invoke(bad)
    assert shipments(engine) == []
    assert outbox(engine) == []


def test_the_sample_event_runs_through_the_function(deps, engine):
    sample = json.loads((SCHEMAS_DIR.parent / "ShippingFunction/inventory-reserved.json").read_text())
    context = LambdaContext(function_name="ShippingFunction")
    assert request.handler(sample, context) == {"batchItemFailures": []}
    detail = json.loads(sample["Records"][0]["body"])["detail"]
    assert [s.order_id for s in shipments(engine)] == [uuid.UUID(detail["orderId"])]
