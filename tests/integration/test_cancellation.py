"""The cancellation saga on a real PostgreSQL and moto: the route, then each consumer.

``POST /orders/{orderId}/cancel`` (the real handler, real tokens); the shipping
service deciding (it alone knows whether the goods left); the order CANCELLED or
carried on to SHIPPED; the stock released; one cancellation email. The whole
choreography runs through the rules of template.yaml (``Pump``); the races and late
events are played one consumer at a time.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import jsonschema
import pytest
from sqlalchemy import text

from common.consumer import InvalidEvent
from common.events import (
    ALL_EVENTS,
    DomainEvent,
    EventMetadata,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCancellationRequested,
    OrderCancelled,
    ReservedItem,
    ShipmentCancelled,
    ShipmentDispatched,
    ShippingAddress,
    ShortItem,
)
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.handlers import reserve
from inventory.usecases import Handled as InventoryHandled
from inventory.usecases import release_reservation, reserve_stock
from orderflow.paths import SCHEMAS_DIR
from orders.adapters.repository import OrdersUnitOfWork
from orders.usecases import apply_status_event
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.handlers import request as shipping
from shipping.usecases import Handled as ShippingHandled
from shipping.usecases import cancel_shipment, request_shipment
from tests.integration.test_choreography import ADDRESS, Pump, place, sent_emails, state, suite
from tests.support.api import HttpClient
from tests.support.events import deliver, eventbridge_event, handled

pytestmark = [pytest.mark.db, pytest.mark.aws]

__all__ = ["suite"]  # the fixture, shared with the choreography tests
BY_TYPE = {e.DETAIL_TYPE: e for e in ALL_EVENTS}


@pytest.fixture
def shipping_api(container: Any, mint: Any) -> HttpClient:
    from shipping.handlers.api import handler

    return HttpClient(handler, token=mint(sub="admin-1", scope="openid admin"))


def outbox(engine: Any, detail_type: str) -> list[Any]:
    """The events of one type written so far, as their models (what the relay publishes)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT detail FROM eventing.outbox WHERE detail_type = :t ORDER BY id"), {"t": detail_type}
        ).scalars()
        return [BY_TYPE[detail_type].model_validate(d) for d in rows]


def valid(event: DomainEvent) -> None:
    schema = json.loads((SCHEMAS_DIR / f"{event.DETAIL_TYPE}.json").read_text())
    jsonschema.validate(event.model_dump(mode="json", by_alias=True), schema)


def status_of(engine: Any, order_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status FROM orders.orders WHERE order_id = :o"), {"o": order_id}
            ).scalar()
        )


def stock(engine: Any) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT sku, on_hand, reserved FROM inventory.stock")).all()
    return {r.sku: (r.on_hand, r.reserved) for r in rows}


def subjects() -> list[str]:
    return sorted(m.subject for m in sent_emails())


# --- the route -------------------------------------------------------------------------------


def test_a_cancellation_is_accepted_once_then_answered_as_the_order_is(suite, orders_api, engine):
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 2}], "corr-cancel")
    path = f"/orders/{order['orderId']}/cancel"

    first = orders_api.post(path, {"reason": "Ordered the wrong size"})
    assert first.status == 202, first.body
    assert first.body["status"] == "CANCELLING"
    assert first.body["cancellationReason"] == "Ordered the wrong size"
    assert first.headers["x-correlation-id"]

    # OrderCancellationRequested and the status change, written with it, under the order's correlation
    [requested] = outbox(engine, "OrderCancellationRequested")
    valid(requested)
    assert requested.reason == "Ordered the wrong size"
    assert requested.metadata.correlation_id == "corr-cancel"
    changes = [(c.previous_status, c.status) for c in outbox(engine, "OrderStatusChanged")]
    assert changes == [("PENDING", "CANCELLING")]

    # Asked again (another reason, or none): 200, the order as it is, nothing new announced
    again = orders_api.post(path, {"reason": "again"})
    assert again.status == 200 and again.body["status"] == "CANCELLING"
    assert again.body["cancellationReason"] == "Ordered the wrong size"
    assert orders_api.call("POST", path).status == 200
    assert len(outbox(engine, "OrderCancellationRequested")) == 1
    assert orders_api.get(f"/orders/{order['orderId']}").body["status"] == "CANCELLING"


def test_anyone_but_the_owner_gets_404_and_an_admin_may_cancel_any_order(suite, orders_api, mint):
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 1}], "corr-owner")
    path = f"/orders/{order['orderId']}/cancel"
    stranger = orders_api.post(path, token=mint(sub="customer-2"))
    assert stranger.status == 404 and stranger.body["error"]["code"] == "NOT_FOUND"
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        assert orders_api.post(f"/orders/{unknown}/cancel").status == 404
    assert orders_api.post(path, token=None).status == 401

    by_admin = orders_api.post(path, token=mint(sub="admin-1", scope="admin"))
    assert by_admin.status == 202 and by_admin.body["status"] == "CANCELLING"
    assert "cancellationReason" not in by_admin.body or by_admin.body["cancellationReason"] is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"reason": "x" * 501}, 422),
        ({"reason": ""}, 422),
        ({"reason": 12}, 422),
        ({"reason": "ok", "refund": True}, 422),
        ("[1, 2]", 422),
        ("{not json", 400),
    ],
)
def test_a_bad_cancellation_body_is_refused_and_changes_nothing(suite, orders_api, engine, body, status):
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 1}], "corr-bad")
    path = f"/orders/{order['orderId']}/cancel"
    if isinstance(body, str):
        result = orders_api.call("POST", path, body=body)
    else:
        result = orders_api.post(path, body)
    assert result.status == status, result.body
    if status == 422:
        assert result.body["error"]["details"]
    assert status_of(engine, order["orderId"]) == "PENDING"
    assert outbox(engine, "OrderCancellationRequested") == []
    # a reason of exactly 500 characters is fine
    assert orders_api.post(path, {"reason": "y" * 500}).status == 202


def _reserved(order: dict[str, Any]) -> InventoryReserved:
    return InventoryReserved(
        order_id=order["orderId"],
        customer_id=order["customerId"],
        items=[ReservedItem(sku="SKU-1", quantity=1)],
        shipping_address=ShippingAddress.model_validate(ADDRESS),
        metadata=EventMetadata.new(order["correlationId"]),
    )


def _dispatched(order: dict[str, Any]) -> ShipmentDispatched:
    return ShipmentDispatched(
        order_id=order["orderId"],
        shipment_id=uuid.uuid4(),
        items=[ReservedItem(sku="SKU-1", quantity=1)],
        carrier="DHL",
        tracking_number="T1",
        dispatched_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        metadata=EventMetadata.new(order["correlationId"]),
    )


def _failed(order: dict[str, Any]) -> InventoryReservationFailed:
    return InventoryReservationFailed(
        order_id=order["orderId"],
        customer_id=order["customerId"],
        reason="short",
        short_items=[ShortItem(sku="SKU-1", requested=1, available=0)],
        metadata=EventMetadata.new(order["correlationId"]),
    )


@pytest.mark.parametrize("final", ["SHIPPED", "DELIVERED", "REJECTED"])
def test_an_order_whose_goods_left_or_that_was_rejected_is_not_cancellable(suite, orders_api, engine, final):
    from common.events import ShipmentDelivered

    order = place(orders_api, [{"sku": "SKU-1", "quantity": 1}], "corr-late")
    if final == "REJECTED":
        events: list[Any] = [_failed(order)]
    else:
        events = [_reserved(order), _dispatched(order)]
        if final == "DELIVERED":
            events.append(
                ShipmentDelivered(
                    order_id=order["orderId"],
                    shipment_id=uuid.uuid4(),
                    delivered_at="2026-01-02T00:00:00Z",  # type: ignore[arg-type]
                    metadata=EventMetadata.new(order["correlationId"]),
                )
            )
    for event in events:
        apply_status_event(event, OrdersUnitOfWork(engine))
    assert status_of(engine, order["orderId"]) == final

    result = orders_api.post(f"/orders/{order['orderId']}/cancel", {"reason": "too late"})
    assert result.status == 409, result.body
    assert result.body["error"]["code"] == "ORDER_NOT_CANCELLABLE"
    assert status_of(engine, order["orderId"]) == final
    assert outbox(engine, "OrderCancellationRequested") == []


# --- the saga through every consumer (template.yaml's rules) ----------------------------------


def test_a_cancelled_order_gets_its_stock_back_and_one_cancellation_email(
    suite, orders_api, aws, container, db, engine, shipping_api
):
    # Given an order, reserved and its shipment requested; every event delivered twice, shuffled
    pump = Pump(aws, container, duplicate=True, shuffle=random.Random(7))
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 3}], "corr-saga")
    pump.run()
    assert status_of(engine, order["orderId"]) == "SHIPPING"
    assert stock(engine)["SKU-1"] == (10, 3)

    # When the customer cancels it
    assert orders_api.post(f"/orders/{order['orderId']}/cancel", {"reason": "Found it cheaper"}).status == 202
    pump.run()

    # Then the order is CANCELLED with its reason, the shipment too, the stock back
    got = orders_api.get(f"/orders/{order['orderId']}").body
    assert got["status"] == "CANCELLED" and got["cancellationReason"] == "Found it cheaper"
    assert stock(engine)["SKU-1"] == (10, 0)
    shipment = shipping_api.get(f"/shipments/{order['orderId']}").body
    assert shipment["status"] == "CANCELLED" and shipment["cancelledAt"] and shipment["requestedAt"]
    # and each step was announced once, each valid against its schema
    counts = dict(state(db)["outbox"])
    for detail_type in (
        "OrderCancellationRequested",
        "ShipmentCancelled",
        "OrderCancelled",
        "InventoryReleased",
    ):
        assert counts[detail_type] == 1, counts
        for event in outbox(engine, detail_type):
            valid(event)
            assert event.metadata.correlation_id == "corr-saga"
    [released] = outbox(engine, "InventoryReleased")
    assert [(i.sku, i.quantity) for i in released.items] == [("SKU-1", 3)]
    [cancelled] = outbox(engine, "OrderCancelled")
    assert cancelled.cancellation_reason == "Found it cheaper"
    changes = [(c.previous_status, c.status) for c in outbox(engine, "OrderStatusChanged")]
    assert changes[-2:] == [("SHIPPING", "CANCELLING"), ("CANCELLING", "CANCELLED")]
    # one receipt and one cancellation email, naming the reason
    assert len(subjects()) == 2 and any(s.endswith("is cancelled") for s in subjects())
    [mail] = [m for m in sent_emails() if m.subject.endswith("is cancelled")]
    assert "Found it cheaper" in mail.body and mail.destinations["ToAddresses"] == ["ada@example.com"]
    assert sorted(pump.delivered["NotificationsFunction"]).count("OrderCancelled") == 2

    # And the cancelled shipment cannot be dispatched; asking again answers the order as it is
    dispatch = shipping_api.post(
        f"/shipments/{order['orderId']}/dispatch", {"carrier": "DHL", "trackingNumber": "1"}
    )
    assert dispatch.status == 409 and dispatch.body["error"]["code"] == "SHIPMENT_STATE_CONFLICT"
    again = orders_api.post(f"/orders/{order['orderId']}/cancel")
    assert again.status == 200 and again.body["status"] == "CANCELLED"
    pump.run()
    assert dict(state(db)["outbox"])["OrderCancellationRequested"] == 1


def test_a_cancellation_after_the_goods_left_is_refused_and_the_order_ships(
    suite, orders_api, aws, container, db, engine, shipping_api
):
    pump = Pump(aws, container)
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 2}], "corr-refused")
    pump.run()
    # Given the goods left, and the customer cancels before the order heard of it
    body = {"carrier": "DHL", "trackingNumber": "JD1"}
    assert shipping_api.post(f"/shipments/{order['orderId']}/dispatch", body).status == 200
    assert orders_api.post(f"/orders/{order['orderId']}/cancel", {"reason": "too slow"}).status == 202

    # When everything is delivered
    pump.run()

    # Then shipping refused, the order is SHIPPED, the stock consumed (not released)
    [refused] = outbox(engine, "ShipmentCancellationRefused")
    valid(refused)
    assert "DISPATCHED" in refused.reason
    assert status_of(engine, order["orderId"]) == "SHIPPED"
    assert orders_api.get(f"/orders/{order['orderId']}").body["cancellationReason"] is None  # refused
    assert stock(engine)["SKU-1"] == (8, 0)
    counts = dict(state(db)["outbox"])
    assert "ShipmentCancelled" not in counts and "OrderCancelled" not in counts
    assert "InventoryReleased" not in counts
    assert not any(s.endswith("is cancelled") for s in subjects())
    changes = [(c.previous_status, c.status) for c in outbox(engine, "OrderStatusChanged")]
    assert changes[-2:] == [("SHIPPING", "CANCELLING"), ("CANCELLING", "SHIPPED")]
    # now it is too late to ask
    assert (
        orders_api.post(f"/orders/{order['orderId']}/cancel").body["error"]["code"] == "ORDER_NOT_CANCELLABLE"
    )
    # and it is delivered as any other
    assert shipping_api.post(f"/shipments/{order['orderId']}/deliver").status == 200
    pump.run()
    assert status_of(engine, order["orderId"]) == "DELIVERED"


# --- one consumer at a time: duplicates, late events, races -----------------------------------


def test_cancelled_before_its_reservation_no_stock_is_ever_reserved_nor_a_shipment_created(
    suite, orders_api, container, engine, shipping_api
):
    # Given an order cancelled at once, its OrderCreated not yet handled by anyone
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 4}], "corr-early")
    assert orders_api.post(f"/orders/{order['orderId']}/cancel").status == 202
    [created] = outbox(engine, "OrderCreated")
    [requested] = outbox(engine, "OrderCancellationRequested")

    # When shipping decides (twice: a redelivery), then a new eventId for the same request
    first = handled(shipping.consumer, eventbridge_event(requested), container)
    assert first == ShippingHandled.CANCELLED
    assert (
        handled(shipping.consumer, eventbridge_event(requested), container) == ShippingHandled.DUPLICATE_EVENT
    )
    twin = requested.model_copy(update={"metadata": EventMetadata.new("corr-early")})
    assert handled(shipping.consumer, eventbridge_event(twin), container) == ShippingHandled.ALREADY_CANCELLED

    # Then no shipment may be created: ShipmentCancelled names none, the record says never requested
    [announced] = outbox(engine, "ShipmentCancelled")
    assert announced.shipment_id is None
    record = shipping_api.get(f"/shipments/{order['orderId']}").body
    assert record["status"] == "CANCELLED" and record["requestedAt"] is None

    # When the order hears it (twice), it is CANCELLED and OrderCancelled announced once
    for _ in range(2):
        apply_status_event(announced, OrdersUnitOfWork(engine))
    assert status_of(engine, order["orderId"]) == "CANCELLED"
    [cancelled] = outbox(engine, "OrderCancelled")

    # When inventory hears OrderCancelled before OrderCreated: it records the cancellation
    assert (
        handled(reserve.consumer, eventbridge_event(cancelled), container)
        == InventoryHandled.CANCELLED_UNRESERVED
    )
    assert (
        handled(reserve.consumer, eventbridge_event(cancelled), container) == InventoryHandled.DUPLICATE_EVENT
    )
    # so the late OrderCreated reserves nothing and announces nothing
    late = reserve_stock(created, InventoryUnitOfWork(engine))
    assert late.handled is InventoryHandled.ORDER_ALREADY_DECIDED and late.outbox_ids == ()
    assert stock(engine)["SKU-1"] == (10, 0)
    assert outbox(engine, "InventoryReserved") == [] and outbox(engine, "InventoryReleased") == []

    # And a late InventoryReserved (had inventory reserved) creates no shipment, moves no status
    late_reserved = _reserved(order)
    result = request_shipment(late_reserved, ShippingUnitOfWork(engine))
    assert result.handled is ShippingHandled.ORDER_CANCELLED and result.outbox_ids == ()
    assert outbox(engine, "ShipmentRequested") == []
    update = apply_status_event(late_reserved, OrdersUnitOfWork(engine))
    assert update.changes == [] and update.conflict is None
    assert status_of(engine, order["orderId"]) == "CANCELLED"
    # the never-requested shipment cannot be dispatched or delivered either
    assert (
        shipping_api.post(
            f"/shipments/{order['orderId']}/dispatch", {"carrier": "D", "trackingNumber": "1"}
        ).status
        == 409
    )
    assert shipping_api.post(f"/shipments/{order['orderId']}/deliver").status == 409


def test_cancelled_while_confirmed_before_shipping_heard_the_stock_returns_and_no_shipment_follows(
    suite, orders_api, container, engine, shipping_api
):
    # Given an order whose stock is reserved (CONFIRMED), its InventoryReserved not yet at shipping
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 2}], "corr-confirmed")
    [created] = outbox(engine, "OrderCreated")
    reserved = reserve_stock(created, InventoryUnitOfWork(engine)).published
    assert isinstance(reserved, InventoryReserved)
    apply_status_event(reserved, OrdersUnitOfWork(engine))
    assert status_of(engine, order["orderId"]) == "CONFIRMED"
    assert stock(engine)["SKU-1"] == (10, 2)

    # When the customer cancels, and the saga runs with shipping hearing the cancellation first
    asked = orders_api.post(f"/orders/{order['orderId']}/cancel", {"reason": "duplicate order"})
    assert asked.status == 202
    [requested] = outbox(engine, "OrderCancellationRequested")
    assert handled(shipping.consumer, eventbridge_event(requested), container) == ShippingHandled.CANCELLED
    [announced] = outbox(engine, "ShipmentCancelled")
    apply_status_event(announced, OrdersUnitOfWork(engine))
    [cancelled] = outbox(engine, "OrderCancelled")
    assert handled(reserve.consumer, eventbridge_event(cancelled), container) == InventoryHandled.RELEASED

    # Then the stock is back, and the late InventoryReserved requests no shipment
    assert stock(engine)["SKU-1"] == (10, 0)
    late = deliver(shipping.consumer, eventbridge_event(reserved), container)
    assert late.log["handled"] == ShippingHandled.ORDER_CANCELLED and late.outbox_ids == ()
    assert outbox(engine, "ShipmentRequested") == []
    got = orders_api.get(f"/orders/{order['orderId']}").body
    assert (got["status"], got["cancellationReason"]) == ("CANCELLED", "duplicate order")
    assert shipping_api.get(f"/shipments/{order['orderId']}").body["status"] == "CANCELLED"


def test_a_release_happens_once_and_a_dispatch_after_it_changes_no_stock(
    suite, orders_api, container, engine
):
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 2}], "corr-release")
    [created] = outbox(engine, "OrderCreated")
    assert reserve_stock(created, InventoryUnitOfWork(engine)).handled is InventoryHandled.RESERVED
    assert stock(engine)["SKU-1"] == (10, 2)
    cancelled = OrderCancelled(
        order_id=order["orderId"], customer_id=order["customerId"], metadata=EventMetadata.new("corr-release")
    )
    assert release_reservation(cancelled, InventoryUnitOfWork(engine)).handled is InventoryHandled.RELEASED
    assert (
        release_reservation(cancelled, InventoryUnitOfWork(engine)).handled
        is InventoryHandled.DUPLICATE_EVENT
    )
    twin = cancelled.model_copy(update={"metadata": EventMetadata.new("corr-release")})
    assert release_reservation(twin, InventoryUnitOfWork(engine)).handled is InventoryHandled.ALREADY_SETTLED
    assert stock(engine)["SKU-1"] == (10, 0)
    assert len(outbox(engine, "InventoryReleased")) == 1
    # a dispatch arriving after the release (shipping never sends one; if it did) consumes nothing
    assert (
        handled(reserve.consumer, eventbridge_event(_dispatched(order)), container)
        == InventoryHandled.ALREADY_SETTLED
    )
    assert stock(engine)["SKU-1"] == (10, 0)


@pytest.mark.parametrize("first", ["failure", "cancellation"])
def test_a_cancellation_racing_a_reservation_failure_ends_in_the_one_state_applied_first(
    suite, orders_api, container, engine, first
):
    order = place(orders_api, [{"sku": "SKU-2", "quantity": 5}], f"corr-race-{first}")  # 1 in stock
    [created] = outbox(engine, "OrderCreated")
    failure = reserve_stock(created, InventoryUnitOfWork(engine))
    assert failure.handled is InventoryHandled.FAILED
    assert isinstance(failure.published, InventoryReservationFailed)

    if first == "failure":
        apply_status_event(failure.published, OrdersUnitOfWork(engine))
        result = orders_api.post(f"/orders/{order['orderId']}/cancel")
        assert result.status == 409 and result.body["error"]["code"] == "ORDER_NOT_CANCELLABLE"
        assert status_of(engine, order["orderId"]) == "REJECTED"
        return

    assert orders_api.post(f"/orders/{order['orderId']}/cancel").status == 202
    # the failure arrives while CANCELLING: the order waits for shipping's answer
    update = apply_status_event(failure.published, OrdersUnitOfWork(engine))
    assert update.changes == [] and update.conflict is None
    assert status_of(engine, order["orderId"]) == "CANCELLING"
    [requested] = outbox(engine, "OrderCancellationRequested")
    assert cancel_shipment(requested, ShippingUnitOfWork(engine)).handled is ShippingHandled.CANCELLED
    [announced] = outbox(engine, "ShipmentCancelled")
    apply_status_event(announced, OrdersUnitOfWork(engine))
    assert status_of(engine, order["orderId"]) == "CANCELLED"
    [cancelled] = outbox(engine, "OrderCancelled")
    # nothing was reserved: nothing to release, nothing announced, the stock untouched
    assert release_reservation(cancelled, InventoryUnitOfWork(engine)).handled is (
        InventoryHandled.CANCELLED_UNRESERVED
    )
    assert outbox(engine, "InventoryReleased") == []
    assert stock(engine)["SKU-2"] == (1, 0)


def test_each_consumer_takes_a_cancellation_event_only_from_its_owner(container, engine):
    order_id = uuid.uuid4()
    forged = {
        "InventoryFunction": OrderCancelled(
            order_id=order_id, customer_id="c", metadata=EventMetadata.new("c")
        ),
        "ShippingFunction": OrderCancellationRequested(
            order_id=order_id, customer_id="c", metadata=EventMetadata.new("c")
        ),
        "OrderStatusFunction": ShipmentCancelled(
            order_id=order_id,
            shipment_id=None,
            cancelled_at="2026-01-01T00:00:00Z",
            metadata=EventMetadata.new("c"),  # type: ignore[arg-type]
        ),
    }
    from orders.handlers import status

    calls = {
        "InventoryFunction": lambda e: deliver(reserve.consumer, e, container),
        "ShippingFunction": lambda e: deliver(shipping.consumer, e, container),
        "OrderStatusFunction": lambda e: deliver(status.consumer, e, container),
    }
    for function_id, event in forged.items():
        envelope = {**eventbridge_event(event), "source": "notifications.service"}
        with pytest.raises(InvalidEvent):
            calls[function_id](envelope)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM eventing.processed_events")).scalar() == 0
