"""OrderStatusFunction on real PostgreSQL: status from the inventory and shipping events."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import create_engine, text

from common import bootstrap
from common.consumer import InvalidEvent
from common.events import (
    DomainEvent,
    EventMetadata,
    InventoryReservationFailed,
    InventoryReserved,
    ReservedItem,
    ShipmentRequested,
    ShippingAddress,
    ShortItem,
)
from common.outbox.relay import relay
from orderflow.lambda_runtime import LambdaContext
from orders.adapters.repository import OrdersUnitOfWork
from orders.handlers import status
from orders.usecases import apply_status_event
from tests.support.aws import publish_outbox
from tests.support.events import deliver as deliver_record
from tests.support.events import eventbridge_event

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
ORDER = json.loads((ROOT / "tests/fixtures/place_order.json").read_text())
SCHEMA = json.loads((ROOT / "events/schemas/OrderStatusChanged.json").read_text())
ADDRESS = ShippingAddress.model_validate(ORDER["shippingAddress"])
ITEMS = [ReservedItem(sku="SKU-1", quantity=2), ReservedItem(sku="SKU-2", quantity=1)]


@pytest.fixture
def order(orders_api, catalog, aws, container) -> dict[str, Any]:
    """A PENDING order, placed through the API (its OrderCreated drained from the bus)."""
    placed = orders_api.post("/orders", ORDER, headers={"X-Correlation-Id": "corr-status"})
    assert placed.status == 201, placed.body
    publish_outbox(container)
    [created] = aws.drain("order-created")
    return {**placed.body, "eventId": created["detail"]["metadata"]["eventId"]}


def metadata(order: dict[str, Any]) -> EventMetadata:
    return EventMetadata.new(order["correlationId"], causation_id=order["eventId"])


def reserved(order: dict[str, Any]) -> InventoryReserved:
    return InventoryReserved(
        order_id=order["orderId"],
        customer_id=order["customerId"],
        items=ITEMS,
        shipping_address=ADDRESS,
        metadata=metadata(order),
    )


def failed(order: dict[str, Any]) -> InventoryReservationFailed:
    return InventoryReservationFailed(
        order_id=order["orderId"],
        customer_id=order["customerId"],
        reason="insufficient stock",
        short_items=[
            ShortItem(sku="SKU-1", requested=2, available=1),
            ShortItem(sku="SKU-2", requested=1, available=0),
        ],
        metadata=metadata(order),
    )


def shipment(order: dict[str, Any]) -> ShipmentRequested:
    return ShipmentRequested(
        order_id=order["orderId"],
        shipment_id=uuid.uuid4(),
        items=ITEMS,
        shipping_address=ADDRESS,
        metadata=metadata(order),
    )


def deliver(event: DomainEvent | dict[str, Any]) -> dict[str, Any]:
    """What OrderStatusFunction did with ``event``, delivered as a batch of one."""
    envelope = eventbridge_event(event) if isinstance(event, DomainEvent) else event
    context = LambdaContext(function_name="OrderStatusFunction")
    log = deliver_record(status.consumer, envelope, bootstrap.container(), context).log
    return {"orderId": log["order_id"], **{k: log[k] for k in ("status", "changes", "duplicate")}}


def status_changes(db: str) -> list[dict[str, Any]]:
    """Every OrderStatusChanged in the outbox, oldest first."""
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return [
                r.detail
                for r in conn.execute(
                    text(
                        "SELECT detail FROM eventing.outbox"
                        " WHERE detail_type = 'OrderStatusChanged' ORDER BY id"
                    )
                )
            ]
    finally:
        engine.dispose()


def steps(db: str) -> list[tuple[str, str]]:
    return [(c["previousStatus"], c["status"]) for c in status_changes(db)]


def test_inventory_reserved_confirms_the_order(orders_api, order, db):
    # Given a PENDING order, when its stock is reserved
    event = reserved(order)
    result = deliver(event)

    # Then it is CONFIRMED, for its owner to see
    assert result == {
        "orderId": order["orderId"],
        "status": "CONFIRMED",
        "changes": ["PENDING->CONFIRMED"],
        "duplicate": False,
    }
    fetched = orders_api.get(f"/orders/{order['orderId']}").body
    assert fetched["status"] == "CONFIRMED"
    assert fetched["updatedAt"] > order["updatedAt"]

    # And one OrderStatusChanged, valid against its schema, caused by the event
    [change] = status_changes(db)
    jsonschema.validate(change, SCHEMA)
    assert change["orderId"] == order["orderId"] and change["customerId"] == "customer-1"
    assert (change["previousStatus"], change["status"], change["rejectionReason"]) == (
        "PENDING",
        "CONFIRMED",
        None,
    )
    assert change["metadata"]["correlationId"] == "corr-status"
    assert change["metadata"]["causationId"] == str(event.metadata.event_id)


def test_a_failed_reservation_rejects_the_order_with_the_reason(orders_api, order, db):
    deliver(failed(order))

    reason = "Not enough stock for SKU-1 (ordered 2, 1 available), SKU-2 (ordered 1, 0 available)."
    fetched = orders_api.get(f"/orders/{order['orderId']}").body
    assert fetched["status"] == "REJECTED"
    assert fetched["rejectionReason"] == reason
    [change] = status_changes(db)
    jsonschema.validate(change, SCHEMA)
    assert (change["previousStatus"], change["status"], change["rejectionReason"]) == (
        "PENDING",
        "REJECTED",
        reason,
    )


def test_a_shipment_request_moves_a_confirmed_order_to_shipping(orders_api, order, db):
    deliver(reserved(order))
    result = deliver(shipment(order))

    assert result["status"] == "SHIPPING" and result["changes"] == ["CONFIRMED->SHIPPING"]
    assert orders_api.get(f"/orders/{order['orderId']}").body["status"] == "SHIPPING"
    assert steps(db) == [("PENDING", "CONFIRMED"), ("CONFIRMED", "SHIPPING")]
    for change in status_changes(db):
        jsonschema.validate(change, SCHEMA)


ARRIVALS = sorted(set(itertools.permutations(["reserved", "shipment"] * 2)))


@pytest.mark.parametrize("arrival", ARRIVALS, ids=["-".join(a) for a in ARRIVALS])
def test_shuffled_and_duplicated_deliveries_end_at_shipping_with_two_changes(orders_api, order, db, arrival):
    # Given the two events, each delivered twice, in any order
    events = {"reserved": eventbridge_event(reserved(order)), "shipment": eventbridge_event(shipment(order))}

    for name in arrival:
        deliver(events[name])

    # Then the order ends SHIPPING, announced as the same two changes every time
    assert orders_api.get(f"/orders/{order['orderId']}").body["status"] == "SHIPPING"
    assert steps(db) == [("PENDING", "CONFIRMED"), ("CONFIRMED", "SHIPPING")]
    for change in status_changes(db):
        jsonschema.validate(change, SCHEMA)


def test_concurrent_deliveries_end_at_shipping_with_two_changes(orders_api, order, db):
    # Given both events, each delivered three times at once by invocations of their own
    events = [reserved(order), shipment(order)] * 3
    barrier = threading.Barrier(len(events))
    errors: list[BaseException] = []

    def invocation(event: Any) -> None:
        engine = create_engine(db)
        try:
            barrier.wait()
            apply_status_event(event, OrdersUnitOfWork(engine))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=invocation, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # Then the row lock serialised them: SHIPPING, and two changes
    assert errors == []
    assert orders_api.get(f"/orders/{order['orderId']}").body["status"] == "SHIPPING"
    assert steps(db) == [("PENDING", "CONFIRMED"), ("CONFIRMED", "SHIPPING")]


def test_a_rejected_order_never_ships_and_a_reserved_one_is_never_rejected(orders_api, order, catalog, db):
    # Given one order rejected, another confirmed
    deliver(failed(order))
    other = orders_api.post("/orders", ORDER).body
    other["eventId"] = str(uuid.uuid4())
    deliver(reserved(other))

    # When events arrive that contradict them (a broken producer)
    assert deliver(shipment(order))["status"] == "REJECTED"
    assert deliver(failed(other))["status"] == "CONFIRMED"

    # Then neither moves, and nothing more is announced
    assert orders_api.get(f"/orders/{order['orderId']}").body["status"] == "REJECTED"
    assert orders_api.get(f"/orders/{other['orderId']}").body["rejectionReason"] is None
    assert len(status_changes(db)) == 2


def test_order_status_changed_reaches_the_bus(container, order, db, aws):
    # Given a consumer of OrderStatusChanged
    aws.route("status-changed", {"source": ["orders.service"], "detail-type": ["OrderStatusChanged"]})
    deliver(reserved(order))

    # When the relay runs
    relay(container.engine, container.publisher)

    # Then the change is on the bus, valid against its schema
    [event] = aws.drain("status-changed")
    assert event["detail-type"] == "OrderStatusChanged"
    jsonschema.validate(event["detail"], SCHEMA)
    assert event["detail"]["status"] == "CONFIRMED"


def test_an_event_for_an_unknown_order_is_refused_for_good_and_writes_nothing(container, db, caplog):
    ghost = {
        "orderId": str(uuid.uuid4()),
        "customerId": "customer-1",
        "correlationId": "corr-x",
        "eventId": str(uuid.uuid4()),
    }
    envelope = eventbridge_event(reserved(ghost))

    # Every event this function takes follows the order's own commit: not early, wrong.
    with pytest.raises(status.UnknownOrder):
        deliver(envelope)

    assert any(
        r.levelname == "ERROR" and getattr(r, "eventbridge_id", None) == envelope["id"]
        for r in caplog.records
    )
    engine = create_engine(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM eventing.processed_events")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM eventing.outbox")).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda e: e["detail"].pop("orderId"), id="detail-missing-a-field"),
        pytest.param(lambda e: e.update({"detail-type": "OrderCreated"}), id="not-one-it-takes"),
        pytest.param(lambda e: e.update(source="orders.service"), id="wrong-source"),
        pytest.param(lambda e: e.pop("id"), id="envelope-without-id"),
    ],
)
def test_a_malformed_event_is_refused_and_changes_nothing(orders_api, order, db, mangle):
    envelope = eventbridge_event(reserved(order))
    mangle(envelope)

    with pytest.raises(InvalidEvent):
        deliver(envelope)

    assert orders_api.get(f"/orders/{order['orderId']}").body["status"] == "PENDING"
    assert status_changes(db) == []
