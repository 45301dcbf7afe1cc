"""End-to-end: orders through the whole local suite (``orderflow local`` in a subprocess).

The tests talk to it only from outside, as a developer would: HTTP to its API, and
the AWS emulator's own API (boto3, ``/moto-api``) to see emails and queues.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from orderflow import template as tpl
from orderflow.ops.dlq import decode as dlq_decode
from tests.support.local_suite import LocalSuite, wait_for

pytestmark = pytest.mark.db


def test_it_prints_one_ready_line_with_its_urls(suite: LocalSuite) -> None:
    ready = [line for line in suite.lines if re.search(r"\bready\b", line)]
    assert len(ready) == 1, suite.log
    assert suite.api in ready[0] and suite.aws in ready[0]


def test_an_order_reaches_shipping_with_one_email_and_its_stock_reserved(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, email = customer
    suite.stock(sku, on_hand=10)

    placed = suite.place(token, [{"sku": sku, "quantity": 2}])
    assert placed.status == 201, placed.body
    assert placed.headers["location"] == f"/orders/{placed.body['orderId']}"

    order = suite.wait_settled(token, placed.body["orderId"])
    assert order["status"] == "SHIPPING", order
    wait_for(lambda: suite.emails_to(email), bool, 15, f"an email to {email}", suite)
    time.sleep(1.5)  # a relay run or more: a duplicate delivery would have been handled by now
    emails = suite.emails_to(email)
    assert len(emails) == 1, emails
    assert placed.body["orderId"][:8] in emails[0]["subject"]
    assert suite.inventory(sku) == {"sku": sku, "onHand": 10, "reserved": 2, "available": 8}


def test_an_order_beyond_stock_is_rejected_and_reserves_nothing(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, _ = customer
    other = f"{sku}-B"
    suite.stock(sku, on_hand=3)
    suite.stock(other, on_hand=5)

    placed = suite.place(token, [{"sku": other, "quantity": 1}, {"sku": sku, "quantity": 4}])
    assert placed.status == 201, placed.body

    order = suite.wait_settled(token, placed.body["orderId"])
    assert order["status"] == "REJECTED", order
    assert sku in order["rejectionReason"]
    assert suite.inventory(sku) == {"sku": sku, "onHand": 3, "reserved": 0, "available": 3}
    assert suite.inventory(other) == {"sku": other, "onHand": 5, "reserved": 0, "available": 5}


def test_a_failing_consumer_retries_then_dead_letters_while_the_flow_goes_on(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, email = customer
    sender = suite.state["sender"]
    ses, sqs = suite.aws_client("ses"), suite.aws_client("sqs")
    dlq = sqs.get_queue_url(QueueName="NotificationsFunction-dlq")["QueueUrl"]
    [source] = tpl.functions()["NotificationsFunction"].queues
    receives = source.max_receive_count
    assert receives is not None and receives >= 5
    suite.stock(sku, on_hand=10)

    ses.delete_identity(Identity=sender)  # from now on SES rejects every email: MessageRejected
    try:
        placed = suite.place(token, [{"sku": sku, "quantity": 1}])
        assert placed.status == 201, placed.body
        order_id = placed.body["orderId"]

        order = suite.wait_settled(token, order_id)
        assert order["status"] == "SHIPPING", order  # inventory and shipping did not wait

        def dead_letters() -> list[dict[str, Any]]:
            got = sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0
            )
            # moved by the queue's redrive policy: the body is the event itself
            letters = [dlq_decode(m) for m in got.get("Messages", [])]
            assert all(letter.envelope == "queue-redrive" for letter in letters), letters
            events = [letter.event for letter in letters if letter.event]
            return [e for e in events if e["detail"]["orderId"] == order_id]

        dead = wait_for(dead_letters, bool, 60, "the event in NotificationsFunction-dlq", suite)
    finally:
        ses.verify_email_identity(EmailAddress=sender)

    assert dead[0]["detail-type"] == "OrderCreated"
    assert dead[0]["detail"]["metadata"]["correlationId"] == order["correlationId"]
    # received (and failed) maxReceiveCount times, then moved by SQS, not by the suite
    failed = (
        rf"NotificationsFunction failed on event {re.escape(dead[0]['id'])} \(receive (\d+) of {receives}\)"
    )
    tried = [int(n) for n in re.findall(failed, suite.log)]
    assert tried == list(range(1, receives + 1)), suite.log
    assert suite.emails_to(email) == []


def test_one_idempotency_key_gives_one_order(suite: LocalSuite, customer: tuple[str, str], sku: str) -> None:
    token, _ = customer
    suite.stock(sku, on_hand=10)
    items = [{"sku": sku, "quantity": 1}]
    answers: list[Any] = []
    posts = [
        threading.Thread(target=lambda: answers.append(suite.place(token, items, key="k-1")))
        for _ in range(2)
    ]
    for post in posts:
        post.start()
    for post in posts:
        post.join()

    assert [a.status for a in answers] == [201, 201], [a.body for a in answers]
    assert answers[0].body["orderId"] == answers[1].body["orderId"]
    listed = suite.request("GET", "/orders", token=token)
    assert [o["orderId"] for o in listed.body["orders"]] == [answers[0].body["orderId"]]
    other_body = suite.place(token, [{"sku": sku, "quantity": 2}], key="k-1")
    assert other_body.status == 409, other_body.body


def test_an_order_is_dispatched_and_delivered_and_its_stock_settles(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, email = customer
    admin = suite.token("e2e-admin", admin=True)
    suite.stock(sku, on_hand=10)
    placed = suite.place(token, [{"sku": sku, "quantity": 4}])
    assert placed.status == 201, placed.body
    order_id = placed.body["orderId"]
    assert suite.wait_settled(token, order_id)["status"] == "SHIPPING"

    # An admin dispatches it (twice: the repeat is answered unchanged), then delivers it.
    body = {"carrier": "DHL", "trackingNumber": "JD0146-E2E"}
    dispatched = suite.request("POST", f"/shipments/{order_id}/dispatch", token=admin, body=body)
    assert dispatched.status == 200 and dispatched.body["status"] == "DISPATCHED", dispatched.body
    again = suite.request("POST", f"/shipments/{order_id}/dispatch", token=admin, body=body)
    assert (again.status, again.body) == (200, dispatched.body)

    def status() -> Any:
        return suite.request("GET", f"/orders/{order_id}", token=token).body.get("status")

    wait_for(status, lambda s: s == "SHIPPED", 30, "the order to be SHIPPED", suite)
    # the reservation left the stock: onHand and reserved fell together, and a
    # physical count may now go to zero
    wait_for(lambda: suite.inventory(sku), lambda s: s["reserved"] == 0, 30, "the stock to settle", suite)
    assert suite.inventory(sku) == {"sku": sku, "onHand": 6, "reserved": 0, "available": 6}
    recount = suite.request("PUT", f"/inventory/{sku}", token=admin, body={"onHand": 0})
    assert recount.status == 200, recount.body

    delivered = suite.request("POST", f"/shipments/{order_id}/deliver", token=admin)
    assert delivered.status == 200 and delivered.body["status"] == "DELIVERED", delivered.body
    wait_for(status, lambda s: s == "DELIVERED", 30, "the order to be DELIVERED", suite)

    # the customer got the receipt and one dispatch email with the tracking number
    wait_for(lambda: suite.emails_to(email), lambda m: len(m) >= 2, 30, "two emails", suite)
    time.sleep(1.5)
    emails = suite.emails_to(email)
    assert len(emails) == 2, emails
    # exactly one is the dispatch email, and it carries this shipment's tracking number
    [dispatch] = [m for m in emails if "on its way" in m["subject"]]
    assert "JD0146-E2E" in (dispatch.get("body") or ""), dispatch


def test_an_order_cancelled_before_dispatch_gets_its_stock_back_and_one_email(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, email = customer
    admin = suite.token("e2e-admin", admin=True)
    suite.stock(sku, on_hand=10)
    placed = suite.place(token, [{"sku": sku, "quantity": 3}])
    assert placed.status == 201, placed.body
    order_id = placed.body["orderId"]

    # As soon as its stock is reserved (CONFIRMED; shipping may have moved it on to SHIPPING
    # within the same poll), the customer cancels it
    seen = wait_for(
        lambda: suite.request("GET", f"/orders/{order_id}", token=token).body.get("status"),
        lambda s: s in ("CONFIRMED", "SHIPPING"),
        30,
        "the order to be CONFIRMED",
        suite,
        every_s=0.01,
    )
    asked = suite.request(
        "POST", f"/orders/{order_id}/cancel", token=token, body={"reason": "Changed my mind"}
    )
    assert asked.status == 202 and asked.body["status"] == "CANCELLING", (seen, asked.body)

    def order() -> Any:
        return suite.request("GET", f"/orders/{order_id}", token=token).body

    done = wait_for(order, lambda o: o.get("status") == "CANCELLED", 30, "the order to be CANCELLED", suite)
    assert done["cancellationReason"] == "Changed my mind"
    # the reservation went back to the stock, and the shipment will never leave
    wait_for(
        lambda: suite.inventory(sku), lambda s: s["reserved"] == 0, 30, "the stock to be released", suite
    )
    assert suite.inventory(sku) == {"sku": sku, "onHand": 10, "reserved": 0, "available": 10}
    shipment = suite.request("GET", f"/shipments/{order_id}", token=admin)
    assert shipment.status == 200 and shipment.body["status"] == "CANCELLED", shipment.body
    refused = suite.request(
        "POST",
        f"/shipments/{order_id}/dispatch",
        token=admin,
        body={"carrier": "DHL", "trackingNumber": "X1"},
    )
    assert refused.status == 409, refused.body
    again = suite.request("POST", f"/orders/{order_id}/cancel", token=token)
    assert again.status == 200 and again.body["status"] == "CANCELLED"

    # the receipt and one cancellation email
    wait_for(lambda: suite.emails_to(email), lambda m: len(m) >= 2, 30, "two emails", suite)
    time.sleep(1.5)
    subjects = sorted(m["subject"] for m in suite.emails_to(email))
    assert len(subjects) == 2 and sum(s.endswith("is cancelled") for s in subjects) == 1, subjects


def test_a_cancellation_after_dispatch_is_refused_and_the_order_ships(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, email = customer
    admin = suite.token("e2e-admin", admin=True)
    suite.stock(sku, on_hand=10)
    placed = suite.place(token, [{"sku": sku, "quantity": 2}])
    order_id = placed.body["orderId"]
    assert suite.wait_settled(token, order_id)["status"] == "SHIPPING"
    body = {"carrier": "DHL", "trackingNumber": "JD-CANCEL-LATE"}
    assert suite.request("POST", f"/shipments/{order_id}/dispatch", token=admin, body=body).status == 200

    # Cancelled right after the dispatch: 409 if the order already heard of it, else
    # accepted (CANCELLING) and then refused by shipping, which knows the goods left
    asked = suite.request("POST", f"/orders/{order_id}/cancel", token=token)
    assert asked.status in (202, 409), asked.body
    if asked.status == 409:
        assert asked.body["error"]["code"] == "ORDER_NOT_CANCELLABLE"

    def status() -> Any:
        return suite.request("GET", f"/orders/{order_id}", token=token).body.get("status")

    wait_for(status, lambda s: s == "SHIPPED", 30, "the order to be SHIPPED", suite)
    wait_for(lambda: suite.inventory(sku), lambda s: s["reserved"] == 0, 30, "the stock to settle", suite)
    assert suite.inventory(sku) == {"sku": sku, "onHand": 8, "reserved": 0, "available": 8}
    late = suite.request("POST", f"/orders/{order_id}/cancel", token=token)
    assert late.status == 409 and late.body["error"]["code"] == "ORDER_NOT_CANCELLABLE", late.body
    time.sleep(1.5)
    assert not any(m["subject"].endswith("is cancelled") for m in suite.emails_to(email))
