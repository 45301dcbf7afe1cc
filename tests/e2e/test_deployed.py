"""The order flows end to end, against a deployed stack or the local suite alike.

    ./dev test tests/e2e --stack orderflow-pr-42        # a stack deployed with EventCapture=true
    ./dev test tests/e2e/test_deployed.py               # the local suite, seen as a stack

These tests know a stack only by its outputs, its HTTP API, its users and the events it
emits (read from its capture queue): nothing here reads a database or a log. With
``--stack`` only these run (tests/e2e/conftest.py); without it they run against
``orderflow local``, its outputs written to a file, its users minted by the local issuer.
"""

from __future__ import annotations

import uuid

from tests.support.stack import Stack

HAPPY_PATH = (
    "OrderCreated",
    "InventoryReserved",
    "ShipmentRequested",
    "ShipmentDispatched",
    "ShipmentDelivered",
)


def new_sku() -> str:
    return f"E2E-{uuid.uuid4().hex[:8].upper()}"


def test_an_order_is_reserved_dispatched_and_delivered(stack: Stack):
    admin = stack.admin()
    token, email = stack.customer()
    sku = new_sku()
    stack.stock(admin, sku, on_hand=5)

    placed = stack.place(token, [{"sku": sku, "quantity": 2}])
    assert placed.status == 201, placed.body
    order_id = placed.body["orderId"]
    stack.wait_status(token, order_id, "SHIPPING")

    dispatched = stack.request(
        "POST",
        f"/shipments/{order_id}/dispatch",
        token=admin,
        body={"carrier": "E2EPost", "trackingNumber": "TRK-1"},
    )
    assert dispatched.status == 200, dispatched.body
    stack.wait_status(token, order_id, "SHIPPED")
    delivered = stack.request("POST", f"/shipments/{order_id}/deliver", token=admin)
    assert delivered.status == 200, delivered.body
    assert stack.wait_status(token, order_id, "DELIVERED")["status"] == "DELIVERED"

    events = stack.capture.events(order_id, *HAPPY_PATH)
    # one correlation id, the request's, through every event that followed from it
    assert {e["detail"]["metadata"]["correlationId"] for e in events} == {placed.headers["x-correlation-id"]}
    created = [e for e in events if e["detail-type"] == "OrderCreated"]
    assert len(created) == 1 and created[0]["source"] == "orders.service"
    assert created[0]["detail"]["customerEmail"] == email
    stock = stack.request("GET", f"/inventory/{sku}", token=admin).body
    assert (stock["onHand"], stock["reserved"]) == (3, 0)


def test_a_cancelled_order_gives_its_stock_back(stack: Stack):
    admin = stack.admin()
    token, _ = stack.customer()
    sku = new_sku()
    stack.stock(admin, sku, on_hand=4)

    placed = stack.place(token, [{"sku": sku, "quantity": 3}])
    assert placed.status == 201, placed.body
    order_id = placed.body["orderId"]
    cancel = stack.request(
        "POST", f"/orders/{order_id}/cancel", token=token, body={"reason": "changed my mind"}
    )
    assert cancel.status == 202, cancel.body
    assert stack.wait_status(token, order_id, "CANCELLED")["cancellationReason"] == "changed my mind"

    stack.capture.events(order_id, "OrderCreated", "OrderCancellationRequested", "OrderCancelled")
    stock = stack.request("GET", f"/inventory/{sku}", token=admin).body
    # whether the reservation came before the cancellation or not, nothing stays reserved
    assert (stock["onHand"], stock["reserved"]) == (4, 0)


def test_an_order_beyond_the_stock_is_rejected(stack: Stack):
    admin = stack.admin()
    token, _ = stack.customer()
    sku = new_sku()
    stack.stock(admin, sku, on_hand=1)

    placed = stack.place(token, [{"sku": sku, "quantity": 2}])
    assert placed.status == 201, placed.body
    order_id = placed.body["orderId"]
    assert stack.wait_status(token, order_id, "REJECTED", "SHIPPING")["status"] == "REJECTED"
    events = stack.capture.events(order_id, "OrderCreated", "InventoryReservationFailed")
    assert "InventoryReserved" not in {e["detail-type"] for e in events}


def test_a_retried_order_is_one_order_and_one_event(stack: Stack):
    admin = stack.admin()
    token, _ = stack.customer()
    sku = new_sku()
    stack.stock(admin, sku, on_hand=10)
    key = str(uuid.uuid4())

    first = stack.place(token, [{"sku": sku, "quantity": 1}], key=key)
    again = stack.place(token, [{"sku": sku, "quantity": 1}], key=key)
    other_body = stack.place(token, [{"sku": sku, "quantity": 2}], key=key)
    assert (first.status, again.status, other_body.status) == (201, 201, 409)
    assert again.body["orderId"] == first.body["orderId"]

    order_id = first.body["orderId"]
    stack.wait_status(token, order_id, "SHIPPING")
    events = stack.capture.events(order_id, "OrderCreated", "InventoryReserved")
    assert [e["detail-type"] for e in events].count("OrderCreated") == 1
    mine = stack.request("GET", "/orders?limit=50", token=token).body["orders"]
    assert [o["orderId"] for o in mine] == [order_id]
