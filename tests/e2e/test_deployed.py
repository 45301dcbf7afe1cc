"""The order flows end to end, against a deployed stack or the local suite alike.

    ./dev test tests/e2e --stack orderflow-pr-42        # a stack deployed with EventCapture=true
    ./dev test tests/e2e/test_deployed.py               # the local suite, seen as a stack

These tests know a stack only by its outputs, its HTTP API, its users and the events it
emits (read from its capture queue): nothing here reads a database or a log. With
``--stack`` only these run (tests/e2e/conftest.py); without it they run against
``orderflow local``, its outputs written to a file, its users minted by the local issuer.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from orderflow.ops.dlq import DeadLetter, peek, redrive
from orderflow.ops.target import Target
from tests.support.local_suite import wait_for
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


def dead_letters_of(ops: Target, function_id: str, event_id: str) -> list[DeadLetter]:
    """The letters in the consumer's DLQ whose event is ``event_id`` (left there)."""
    return [
        d
        for d in peek(ops, ops.dlq_url(function_id), visibility_s=2)
        if (d.event or {}).get("id") == event_id
    ]


def wait_dead_letter(ops: Target, function_id: str, event_id: str, not_in: set[str]) -> DeadLetter:
    """The first letter of ``event_id`` in the consumer's DLQ that is not one of ``not_in``."""
    letters = wait_for(
        lambda: [d for d in dead_letters_of(ops, function_id, event_id) if d.message_id not in not_in],
        bool,
        90,
        f"event {event_id} in {function_id}'s DLQ",
        every_s=1,
    )
    return letters[0]


def remove_dead_letters(ops: Target, function_id: str, event_id: str) -> None:
    """Leave the DLQ as it was (a letter left there would set off its alarm)."""
    sqs, url = ops.client("sqs"), ops.dlq_url(function_id)
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        mine = [m for m in messages if json.loads(m["Body"]).get("id") == event_id]
        for message in mine:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        for message in messages:
            if message not in mine:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        if not dead_letters_of(ops, function_id, event_id):
            return


def test_a_poisoned_event_goes_to_its_dlq_with_why_and_redrive_puts_it_back(stack: Stack):
    """An event a consumer refuses for good reaches its DLQ at once, with why; the operator's
    redrive puts it back into that consumer's queue, where it is refused again, and no
    event follows from it. (That a redriven event takes effect once its fault is fixed is
    shown on the local suite, tests/e2e/test_operations.py.)"""
    ops = stack.ops
    assert ops is not None
    order_id = str(uuid.uuid4())
    poisoned: dict[str, Any] = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "OrderCreated",
        "source": "orders.service",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        # no customer, items or address: not an OrderCreated InventoryFunction can take
        "detail": {
            "orderId": order_id,
            "metadata": {"eventId": str(uuid.uuid4()), "correlationId": "e2e-poison"},
        },
    }
    # Given the poisoned event in InventoryFunction's queue (where its rule puts events,
    # and where `orderflow dlq redrive` sends them back)
    ops.client("sqs").send_message(
        QueueUrl=ops.queue_url("InventoryFunction"), MessageBody=json.dumps(poisoned)
    )
    try:
        # Then it reaches the DLQ at once, decoded with why (not after the retry horizon)
        first = wait_dead_letter(ops, "InventoryFunction", poisoned["id"], not_in=set())
        assert first.envelope == "consumer-refused", first
        assert first.event == poisoned
        assert first.error and "InventoryFunction" in first.error
        assert "InvalidEvent: invalid OrderCreated detail" in first.error
        assert first.attempts == 1

        # When the operator redrives it
        [put_back] = redrive(ops, "InventoryFunction", message_ids={first.message_id})
        assert put_back.message_id == first.message_id

        # Then it went back through the consumer, which refused it again: one letter, new
        second = wait_dead_letter(ops, "InventoryFunction", poisoned["id"], not_in={first.message_id})
        assert second.envelope == "consumer-refused" and second.event == poisoned
        assert [d.message_id for d in dead_letters_of(ops, "InventoryFunction", poisoned["id"])] == [
            second.message_id
        ]
        # and nothing followed from it on the bus
        stack.capture.drain()
        assert order_id not in stack.capture.by_order
    finally:
        remove_dead_letters(ops, "InventoryFunction", poisoned["id"])
    assert dead_letters_of(ops, "InventoryFunction", poisoned["id"]) == []
