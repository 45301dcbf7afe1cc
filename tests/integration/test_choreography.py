"""The whole choreography in process: real handlers, real PostgreSQL, moto's EventBridge
with the rules of template.yaml (their patterns read from the template), each rule
delivering to an SQS queue that a pump hands to the consumer's handler, as Lambda
would.

Every consumer publishes its follow-up right after its commit, so the pump only has
to drain queues until the bus is quiet.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from sqlalchemy import create_engine, text

from orderflow.lambda_runtime import LambdaContext
from orderflow.template import functions
from tests.support.aws import publish_outbox
from tests.support.events import queue_arn, sqs_event

pytestmark = [pytest.mark.db, pytest.mark.aws]

CONSUMERS = ("InventoryFunction", "NotificationsFunction", "ShippingFunction", "OrderStatusFunction")
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "line2": None,
    "city": "London",
    "postalCode": "N1 9GU",
    "country": "GB",
}


def _handler(function_id: str) -> Callable[[dict[str, Any], Any], Any]:
    import importlib

    fn = functions()[function_id]
    return getattr(importlib.import_module(fn.module), fn.attribute)  # type: ignore[no-any-return]


def _batches(
    deliveries: list[tuple[str, dict[str, Any]]], size: int
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive deliveries to one function, cut at ``size``, in delivery order."""
    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for function_id, event in deliveries:
        if batches and batches[-1][0] == function_id and len(batches[-1][1]) < size:
            batches[-1][1].append(event)
        else:
            batches.append((function_id, [event]))
    return batches


class Pump:
    """Drains each consumer's queue into its handler until nothing is left.

    ``duplicate`` delivers every event twice; ``shuffle`` mixes the deliveries of all
    queues in a random order: at-least-once, any order, as EventBridge promises.
    """

    def __init__(
        self,
        aws: Any,
        container: Any,
        duplicate: bool = False,
        shuffle: random.Random | None = None,
        batch_size: int = 10,
        late: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.aws = aws
        self.container = container
        self.duplicate = duplicate
        self.shuffle = shuffle
        self.handlers = {f: _handler(f) for f in CONSUMERS}
        self.delivered: dict[str, list[str]] = {f: [] for f in CONSUMERS}
        self.batch_size = batch_size
        # (function, detail-type) deliveries held back until nothing else is left: an
        # event that arrives after the ones that follow from it.
        self.late = late
        self.held: list[tuple[str, dict[str, Any]]] = []
        for function_id in CONSUMERS:
            [pattern] = functions()[function_id].rule_patterns()
            aws.route(function_id, pattern)

    def run(self, max_rounds: int = 20) -> None:
        for _ in range(max_rounds):
            batch = [(f, event) for f in CONSUMERS for event in self.aws.drain(f)]
            if not batch:
                # Queues empty: the relay's scheduled run publishes whatever a
                # best-effort fast path left (it usually leaves nothing).
                publish_outbox(self.container)
                batch = [(f, event) for f in CONSUMERS for event in self.aws.drain(f)]
            held = [(f, e) for f, e in batch if (f, e["detail-type"]) in self.late]
            self.held += held
            batch = [d for d in batch if d not in held]
            if not batch:
                batch, self.held = self.held, []
            if not batch:
                return
            if self.duplicate:
                batch = batch + batch
            if self.shuffle is not None:
                self.shuffle.shuffle(batch)
            for event in (e for _, e in batch):
                event.setdefault("account", "123456789012")  # EventBridge sends it; moto does not
            # As event source mappings would: up to ten records a batch, per function.
            for function_id, events in _batches(batch, self.batch_size):
                response = self.handlers[function_id](
                    sqs_event(*events, source_arn=queue_arn(function_id)),
                    LambdaContext(function_name=function_id),
                )
                # No record of a legitimate event ever fails, whatever the order.
                assert response == {"batchItemFailures": []}, (function_id, response)
                self.delivered[function_id] += [e["detail-type"] for e in events]
        raise AssertionError("the choreography did not settle")


@pytest.fixture
def suite(container: Any, aws: Any, mint: Any, orders_api: Any) -> Any:
    """A catalog, stock and a verified sender; returns helpers for the test."""
    from inventory.handlers.api import handler as inventory_api
    from tests.support.api import HttpClient

    boto3.client("ses", region_name="us-east-1").verify_email_identity(
        EmailAddress=container.settings.sender_email
    )
    admin = mint(sub="admin-1", scope="admin")
    stock_api = HttpClient(inventory_api, token=admin)
    for sku, price, on_hand in (("SKU-1", "12.50", 10), ("SKU-2", "3.99", 1)):
        product = {"name": sku, "unitPrice": price, "currency": "USD"}
        assert orders_api.put(f"/products/{sku}", product, token=admin).status == 200
        assert stock_api.put(f"/inventory/{sku}", {"onHand": on_hand}).status == 200
    return stock_api


def sent_emails() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def state(db: str) -> dict[str, Any]:
    engine = create_engine(db)
    try:
        with engine.connect() as conn:

            def q(sql: str) -> list[Any]:
                return [tuple(r) for r in conn.execute(text(sql))]

            return {
                "orders": q("SELECT status, rejection_reason FROM orders.orders"),
                "stock": q("SELECT sku, on_hand, reserved FROM inventory.stock ORDER BY sku"),
                "reservations": q("SELECT sku, quantity FROM inventory.reservations ORDER BY sku"),
                "shipments": q("SELECT count(*) FROM shipping.shipments"),
                "emails": q("SELECT status FROM notifications.emails"),
                "outbox": q("SELECT detail_type, count(*) FROM eventing.outbox GROUP BY 1 ORDER BY 1"),
                "unpublished": q("SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL"),
            }
    finally:
        engine.dispose()


def place(orders_api: Any, items: list[dict[str, Any]], correlation_id: str) -> dict[str, Any]:
    result = orders_api.post(
        "/orders",
        {"items": items, "shippingAddress": ADDRESS},
        headers={"X-Correlation-Id": correlation_id},
    )
    assert result.status == 201, result.body
    return result.body  # type: ignore[no-any-return]


def test_an_order_travels_through_every_service_to_shipping(suite, orders_api, aws, db, container):
    # Given the rules of template.yaml, each delivering to its consumer
    pump = Pump(aws, container)
    # When a customer places an order within stock
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 2}], "corr-journey")
    pump.run()

    # Then one receipt email went out, stock was reserved, a shipment requested,
    # and the order followed: PENDING → CONFIRMED → SHIPPING
    [email] = sent_emails()
    assert order["orderId"][:8] in email.subject
    assert email.destinations["ToAddresses"] == ["ada@example.com"]
    final = state(db)
    assert final["orders"] == [("SHIPPING", None)]
    assert final["stock"][0] == ("SKU-1", 10, 2)
    assert final["reservations"] == [("SKU-1", 2)]
    assert final["shipments"] == [(1,)]
    assert final["unpublished"] == [(0,)]
    assert dict(final["outbox"]) == {
        "InventoryReserved": 1,
        "OrderCreated": 1,
        "OrderStatusChanged": 2,
        "ShipmentRequested": 1,
    }
    assert orders_api.get(f"/orders/{order['orderId']}").body["status"] == "SHIPPING"
    # And the request's correlation id travelled through every event
    engine = create_engine(db)
    with engine.connect() as conn:
        correlations = set(conn.execute(text("SELECT correlation_id FROM eventing.outbox")).scalars())
    engine.dispose()
    assert correlations == {"corr-journey"}


def test_an_order_beyond_stock_is_rejected_with_nothing_reserved_and_gets_two_emails(
    suite, orders_api, aws, db, container
):
    pump = Pump(aws, container)
    place(orders_api, [{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-2", "quantity": 3}], "corr-short")
    pump.run()

    final = state(db)
    [(status, reason)] = final["orders"]
    assert status == "REJECTED"
    assert "SKU-2" in reason and "ordered 3" in reason and "1 available" in reason
    assert final["stock"] == [("SKU-1", 10, 0), ("SKU-2", 1, 0)]
    assert final["reservations"] == []
    assert final["shipments"] == [(0,)]
    # the receipt, and one rejection email naming what was short
    subjects = sorted(m.subject for m in sent_emails())
    assert len(subjects) == 2, subjects
    assert "could not be fulfilled" in subjects[1] and subjects[0].startswith("We received")
    assert "ShippingFunction" not in {f for f, seen in pump.delivered.items() if seen}


def test_every_event_twice_in_any_order_ends_as_one_clean_delivery(suite, orders_api, aws, db, container):
    # Given every consumer receives every event twice, all deliveries shuffled
    pump = Pump(aws, container, duplicate=True, shuffle=random.Random(20261126))
    order = place(orders_api, [{"sku": "SKU-1", "quantity": 3}], "corr-chaos")
    pump.run()

    # Then the outcome is that of one clean delivery
    final = state(db)
    assert final["orders"] == [("SHIPPING", None)]
    assert final["stock"][0] == ("SKU-1", 10, 3)
    assert final["reservations"] == [("SKU-1", 3)]
    assert final["shipments"] == [(1,)]
    assert final["emails"] == [("SENT",)]
    assert len(sent_emails()) == 1
    assert dict(final["outbox"]) == {
        "InventoryReserved": 1,
        "OrderCreated": 1,
        "OrderStatusChanged": 2,
        "ShipmentRequested": 1,
    }
    # And each consumer did see its events twice
    assert sorted(pump.delivered["ShippingFunction"]) == ["InventoryReserved"] * 2
    assert json.dumps(orders_api.get(f"/orders/{order['orderId']}").body["status"]) == '"SHIPPING"'


def test_many_orders_in_shuffled_duplicated_batches_with_early_rejections_and_cancellations(
    suite, orders_api, aws, db, container
):
    # Given notifications hears each OrderCreated only after everything that follows from
    # it (rejections and cancellations arrive early), every event twice, shuffled, in batches
    pump = Pump(
        aws,
        container,
        duplicate=True,
        shuffle=random.Random(20261204),
        late=frozenset({("NotificationsFunction", "OrderCreated")}),
    )
    within = [place(orders_api, [{"sku": "SKU-1", "quantity": 1}], f"corr-ok-{n}") for n in range(3)]
    beyond = [place(orders_api, [{"sku": "SKU-2", "quantity": 3}], f"corr-short-{n}") for n in range(3)]
    cancelled = [place(orders_api, [{"sku": "SKU-1", "quantity": 2}], f"corr-cancel-{n}") for n in range(2)]
    for order in cancelled:  # at once, before any consumer heard of the order
        assert orders_api.post(f"/orders/{order['orderId']}/cancel").status == 202

    # When every event is delivered (the Pump fails on any failed record)
    pump.run(max_rounds=60)

    # Then each order ended as the contract says
    def status(order: dict[str, Any]) -> str:
        return str(orders_api.get(f"/orders/{order['orderId']}").body["status"])

    assert [status(o) for o in within] == ["SHIPPING"] * 3
    assert [status(o) for o in beyond] == ["REJECTED"] * 3
    assert [status(o) for o in cancelled] == ["CANCELLED"] * 2
    # And each got one email of each kind its story calls for, no more, none left pending
    engine = create_engine(db)
    with engine.connect() as conn:
        emails = Counter(
            (str(o), k)
            for o, k, s in conn.execute(text("SELECT order_id, kind, status FROM notifications.emails"))
            if s == "SENT"
        )
        pending = conn.execute(text("SELECT count(*) FROM notifications.pending_emails")).scalar()
    engine.dispose()
    expected = Counter(
        [(o["orderId"], "CONFIRMATION") for o in within + beyond + cancelled]
        + [(o["orderId"], "REJECTION") for o in beyond]
        + [(o["orderId"], "CANCELLATION") for o in cancelled]
    )
    assert emails == expected
    assert pending == 0
    assert len(sent_emails()) == sum(expected.values())  # SES saw each email once
    # And the early events really came first: notifications took them before OrderCreated
    seen = pump.delivered["NotificationsFunction"]
    assert seen.index("OrderCreated") > seen.index("InventoryReservationFailed")
    assert seen.index("OrderCreated") > seen.index("OrderCancelled")
