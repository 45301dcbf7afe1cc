"""End-to-end: operating the local suite with the ops commands, run as an operator runs
them (``orderflow dlq ...`` in a subprocess against the suite's state folder).

Its own module, so its own suite: the SES fault below must not touch other tests.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from orderflow.template import functions
from tests.support.local_suite import LocalSuite, orderflow, wait_for

pytestmark = pytest.mark.db


def dead_letters(suite: LocalSuite, function_id: str) -> list[dict[str, Any]]:
    return list(json.loads(orderflow(suite, "dlq", "show", function_id, "--json").stdout))


def test_a_failing_consumer_dead_letters_then_redrive_sends_exactly_one_email(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, email = customer
    sender = suite.state["sender"]
    ses = suite.aws_client("ses")
    suite.stock(sku, on_hand=5)
    [source] = functions()["NotificationsFunction"].queues

    # Given NotificationsFunction cannot send (its SES identity removed)
    ses.delete_identity(Identity=sender)
    try:
        order_id = suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
        # When it failed the receipt on every receive, SQS's redrive moved it to its DLQ,
        # where `dlq show` decodes it
        letters = wait_for(
            lambda: [
                d
                for d in dead_letters(suite, "NotificationsFunction")
                if (d["event"] or {}).get("detail", {}).get("orderId") == order_id
            ],
            bool,
            60,
            "the receipt in NotificationsFunction's DLQ",
            suite,
            every_s=0.5,
        )
    finally:
        ses.verify_email_identity(EmailAddress=sender)
    (letter,) = letters
    assert letter["envelope"] == "queue-redrive"
    assert letter["event"]["detail-type"] == "OrderCreated"
    event_id = letter["event"]["id"]
    assert (
        f"failed on event {event_id} (receive {source.max_receive_count} of {source.max_receive_count})"
        in (suite.log)
    )
    assert suite.emails_to(email) == []
    listed = json.loads(orderflow(suite, "dlq", "list", "--json").stdout)
    assert {r["function"]: r["depth"] for r in listed}["NotificationsFunction"] >= 1

    # A dry run changes nothing
    assert (
        "would put back 1 event"
        in orderflow(suite, "dlq", "redrive", "NotificationsFunction", "--dry-run").stdout
    )
    assert len(dead_letters(suite, "NotificationsFunction")) == 1

    # Then, the fault fixed, redrive puts it back into the consumer's queue: exactly one email
    put_back = orderflow(suite, "dlq", "redrive", "NotificationsFunction").stdout
    assert "put back 1 event(s) into its queue" in put_back and "NotificationsFunction-queue" in put_back
    wait_for(lambda: suite.emails_to(email), lambda m: len(m) == 1, 30, "one receipt", suite)
    assert dead_letters(suite, "NotificationsFunction") == []

    # Redrive twice: nothing left to put back, and still one email
    assert "put back 0 event" in orderflow(suite, "dlq", "redrive", "NotificationsFunction").stdout
    # only the consumer that failed saw the event again: no other effect, no second email
    assert suite.wait_settled(token, order_id)["status"] == "SHIPPING"
    time.sleep(1.5)
    assert len(suite.emails_to(email)) == 1
    assert suite.inventory(sku)["reserved"] == 1
    assert suite.log.count(f"failed on event {event_id} ") == source.max_receive_count


def journey(suite: LocalSuite, order_id: str) -> list[str]:
    steps = json.loads(orderflow(suite, "journey", order_id, "--json").stdout)["steps"]
    assert [s["at"] for s in steps[1:]] == sorted(s["at"] for s in steps[1:])  # in time order
    return [s["what"] for s in steps]


def test_journey_shows_every_step_of_a_shipped_and_of_a_rejected_order(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, email = customer
    suite.stock(sku, on_hand=1)
    shipped = suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
    assert suite.wait_settled(token, shipped)["status"] == "SHIPPING"
    rejected = suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
    assert suite.wait_settled(token, rejected)["status"] == "REJECTED"
    wait_for(
        lambda: suite.emails_to(email), lambda m: len(m) == 3, 30, "both receipts and the rejection", suite
    )

    def in_order(steps: list[str], expected: list[str]) -> None:
        at = -1
        for want in expected:
            found = [i for i, s in enumerate(steps) if want in s and i > at]
            assert found, f"{want!r} missing after step {at} in {steps}"
            at = found[0]

    steps = journey(suite, shipped)
    assert steps[0] == "order placed (status PENDING)"
    # Shipping and order-status both consume InventoryReserved, in either order: each
    # causal chain is asserted on its own.
    for chain in (
        ["wrote OrderCreated", "inventory handled OrderCreated", "status PENDING → CONFIRMED"],
        [
            "inventory handled OrderCreated",
            "shipping handled InventoryReserved",
            "status CONFIRMED → SHIPPING",
        ],
        ["status PENDING → CONFIRMED", "status CONFIRMED → SHIPPING"],
    ):
        in_order(steps, chain)
    # published_at is the publisher's mark after PutEvents returned: a consumer may log
    # its handling first, so only its presence is asserted
    for kind in ("OrderCreated", "InventoryReserved", "ShipmentRequested"):
        assert f"{kind} published to the bus" in steps, steps
    assert any(s.startswith("shipment ") and s.endswith(" REQUESTED") for s in steps)
    assert "notifications handled OrderCreated" in steps and "email CONFIRMATION SENT" in steps

    steps = journey(suite, rejected)
    in_order(
        steps,
        [
            "wrote OrderCreated",
            "inventory handled OrderCreated",
            "wrote InventoryReservationFailed",
            "status PENDING → REJECTED (Not enough stock",
        ],
    )
    assert not any(s.startswith("shipment ") for s in steps)
    assert "email CONFIRMATION SENT" in steps and "email REJECTION SENT" in steps


def snapshot(url: str) -> dict[str, Any]:
    """Every piece of state the events drive, as plain values."""
    from sqlalchemy import create_engine, text

    queries = {
        "orders": "SELECT order_id, status, updated_at FROM orders.orders ORDER BY order_id",
        "stock": "SELECT sku, on_hand, reserved FROM inventory.stock ORDER BY sku",
        "reservations": "SELECT order_id, sku, quantity FROM inventory.reservations ORDER BY 1, 2",
        "emails": "SELECT order_id, status, message_id FROM notifications.emails ORDER BY 1",
        "shipments": "SELECT order_id, status FROM shipping.shipments ORDER BY 1",
        "handled": "SELECT consumer, event_id FROM eventing.processed_events ORDER BY 1, 2",
        "outbox": "SELECT event_id FROM eventing.outbox ORDER BY 1",
    }
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: [tuple(r) for r in conn.execute(text(q))] for name, q in queries.items()}
    finally:
        engine.dispose()


def test_replay_over_a_window_changes_no_state(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    from datetime import UTC, datetime, timedelta

    token, email = customer
    start = datetime.now(UTC) - timedelta(seconds=1)
    suite.stock(sku, on_hand=1)
    orders = [suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"] for _ in range(2)]
    assert sorted(suite.wait_settled(token, o)["status"] for o in orders) == ["REJECTED", "SHIPPING"]
    wait_for(
        lambda: suite.emails_to(email), lambda m: len(m) == 3, 30, "both receipts and the rejection", suite
    )
    time.sleep(3)  # the last follow-up events handled
    before = snapshot(suite.state["database"])
    end = datetime.now(UTC)

    dry = orderflow(suite, "replay", "--from", start.isoformat(), "--to", end.isoformat(), "--dry-run").stdout
    assert "state: DRY RUN" in dry
    report = orderflow(suite, "replay", "--from", start.isoformat(), "--to", end.isoformat()).stdout
    assert "state: COMPLETED" in report, report
    archived = int(re.search(r"archivedEvents: (\d+)", report).group(1))  # type: ignore[union-attr]
    assert archived >= 6  # OrderCreated x2, reserved, failed, shipment requested, status changes...
    time.sleep(5)  # the replayed events delivered and handled (skipped) by every consumer
    assert snapshot(suite.state["database"]) == before
    assert len(suite.emails_to(email)) == 3  # nothing sent again by the replay
