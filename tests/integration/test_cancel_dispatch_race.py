"""A cancellation and a dispatch of the same order, racing, many times, on a real PostgreSQL.

One thread is ShippingFunction handling ``OrderCancellationRequested`` (its own
composition root, so its own engine and connection); the other is an admin's
``POST /shipments/{orderId}/dispatch`` through ShippingApiFunction's handler (the
functions' container, another engine). Both start together at a barrier. Whatever
the interleaving, exactly one wins: the goods left (the cancellation refused, the
reservation consumed) or they never will (the dispatch 409, the reservation
released), never both; and the stock invariants hold after every round.

The second test races the cancellation against the shipment request itself
(``InventoryReserved``), in two ShippingFunction containers.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from common import bootstrap
from common.events import (
    EventMetadata,
    InventoryReserved,
    OrderCancellationRequested,
    OrderCancelled,
    OrderCreated,
    OrderCreatedItem,
    ReservedItem,
    ShipmentCancelled,
    ShipmentDispatched,
    ShippingAddress,
)
from common.money import Money
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.domain.commands import SetStock
from inventory.usecases import Handled as InventoryHandled
from inventory.usecases import consume_reservation, release_reservation, reserve_stock, set_stock
from orders.adapters.repository import OrdersUnitOfWork
from orders.usecases import apply_status_event
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.handlers import request as shipping
from shipping.usecases import Handled, request_shipment
from tests.support.api import HttpClient
from tests.support.events import eventbridge_event, handled

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROUNDS = 40
# Every third round gives one side this head start, every third the other: both outcomes
# must then occur whatever the machine's scheduling (the other rounds race freely). Far
# longer than a loaded machine needs to start one thread's transaction before the other's.
HEAD_START_S = 0.5


def head_start(n: int) -> tuple[float, float]:
    """(first side's delay, second side's delay) after the barrier in round ``n``."""
    return [(0.0, HEAD_START_S), (HEAD_START_S, 0.0), (0.0, 0.0)][n % 3]


ADDRESS = ShippingAddress(name="Ada", line1="1 Main St", city="London", postal_code="N1 9GU", country="GB")


def _outbox(engine: Any, detail_type: str, order_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT detail FROM eventing.outbox WHERE detail_type = :t AND detail->>'orderId' = :o"),
                {"t": detail_type, "o": str(order_id)},
            ).scalars()
        )


def test_a_cancellation_and_a_dispatch_never_both_win(container, settings, mint, engine):
    from orders.adapters.tables import orders as orders_table
    from shipping.handlers.api import handler as shipping_api_handler

    admin = HttpClient(shipping_api_handler, token=mint(sub="admin-1", scope="admin"))
    # ShippingFunction's own container: its own engine, its own connections
    consumer = bootstrap.Container(settings=settings, events_client=container.events_client)
    set_stock(SetStock("RACE-1", 10_000), InventoryUnitOfWork(engine))
    outcomes: Counter[str] = Counter()
    try:
        for n in range(ROUNDS):
            # Given an order (PENDING → SHIPPING), reserved, its shipment requested, now CANCELLING
            order_id = uuid.uuid4()
            created = OrderCreated(
                order_id=order_id,
                customer_id="customer-1",
                customer_email="ada@example.com",
                items=[OrderCreatedItem(sku="RACE-1", quantity=3, unit_price=Money.parse("1.00", "USD"))],
                total=Money.parse("3.00", "USD"),
                currency="USD",
                shipping_address=ADDRESS,
                metadata=EventMetadata.new(f"corr-race-{n}"),
            )
            with engine.begin() as conn:
                conn.execute(
                    orders_table.insert().values(
                        order_id=order_id,
                        customer_id="customer-1",
                        customer_email="ada@example.com",
                        status="CANCELLING",
                        total=Money.parse("3.00", "USD"),
                        currency="USD",
                        shipping_address=ADDRESS.model_dump(mode="json", by_alias=True),
                        correlation_id=f"corr-race-{n}",
                        created_at=created.metadata.timestamp,
                        updated_at=created.metadata.timestamp,
                    )
                )
            reserved = reserve_stock(created, InventoryUnitOfWork(engine)).published
            request_shipment(reserved, ShippingUnitOfWork(engine))  # type: ignore[arg-type]
            requested = OrderCancellationRequested(
                order_id=order_id, customer_id="customer-1", metadata=EventMetadata.new(f"corr-race-{n}")
            )

            # When the cancellation and the dispatch start together
            barrier = threading.Barrier(2)
            results: dict[str, Any] = {}

            cancel_delay, dispatch_delay = head_start(n)

            def cancel(
                barrier: threading.Barrier, results: dict[str, Any], event: dict[str, Any], delay: float
            ) -> None:
                barrier.wait()
                time.sleep(delay)
                results["cancel"] = handled(shipping.consumer, event, consumer)

            def dispatch(
                barrier: threading.Barrier, results: dict[str, Any], path: str, body: Any, delay: float
            ) -> None:
                barrier.wait()
                time.sleep(delay)
                results["dispatch"] = admin.post(path, body).status

            body = {"carrier": "DHL", "trackingNumber": f"T{n}"}
            threads = [
                threading.Thread(
                    target=cancel, args=(barrier, results, eventbridge_event(requested), cancel_delay)
                ),
                threading.Thread(
                    target=dispatch,
                    args=(barrier, results, f"/shipments/{order_id}/dispatch", body, dispatch_delay),
                ),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)

            # Then exactly one won
            if results["dispatch"] == 200:
                assert results["cancel"] == Handled.CANCELLATION_REFUSED, results
                outcomes["dispatched"] += 1
            else:
                assert (results["dispatch"], results["cancel"]) == (409, Handled.CANCELLED), results
                outcomes["cancelled"] += 1

            # And the consequences follow: the order's status, the stock's settlement
            for detail in _outbox(engine, "ShipmentDispatched", order_id):
                dispatched = ShipmentDispatched.model_validate(detail)
                assert (
                    consume_reservation(dispatched, InventoryUnitOfWork(engine)) is InventoryHandled.CONSUMED
                )
                apply_status_event(dispatched, OrdersUnitOfWork(engine))
            for detail in _outbox(engine, "ShipmentCancelled", order_id):
                apply_status_event(ShipmentCancelled.model_validate(detail), OrdersUnitOfWork(engine))
            for detail in _outbox(engine, "OrderCancelled", order_id):
                released = release_reservation(
                    OrderCancelled.model_validate(detail), InventoryUnitOfWork(engine)
                )
                assert released.handled is InventoryHandled.RELEASED

            with engine.connect() as conn:
                shipment = conn.execute(
                    text("SELECT status FROM shipping.shipments WHERE order_id = :o"), {"o": order_id}
                ).scalar()
                settlement = conn.execute(
                    text("SELECT settlement FROM inventory.settlements WHERE order_id = :o"), {"o": order_id}
                ).scalar()
                status = conn.execute(
                    text("SELECT status FROM orders.orders WHERE order_id = :o"), {"o": order_id}
                ).scalar()
                on_hand, reserved_qty = conn.execute(
                    text("SELECT on_hand, reserved FROM inventory.stock WHERE sku = 'RACE-1'")
                ).one()
            assert (shipment, settlement, status) in (
                ("DISPATCHED", "CONSUMED", "SHIPPED"),
                ("CANCELLED", "RELEASED", "CANCELLED"),
            ), (shipment, settlement, status)
            assert 0 <= reserved_qty <= on_hand
            assert reserved_qty == 0  # every round's reservation was consumed or released
            assert on_hand == 10_000 - 3 * outcomes["dispatched"]
    finally:
        consumer.engine.dispose()
    # both outcomes happened (the head starts guarantee each at least once), and nothing else
    assert outcomes["dispatched"] >= ROUNDS // 3 and outcomes["cancelled"] >= ROUNDS // 3, outcomes
    assert sum(outcomes.values()) == ROUNDS
    print(f"race outcomes over {ROUNDS} rounds: {dict(outcomes)}")


def test_a_cancellation_racing_the_shipment_request_leaves_no_shipment_to_dispatch(
    container, settings, engine
):
    """ShippingFunction in two containers at once: ``InventoryReserved`` and
    ``OrderCancellationRequested`` of the same order. The order's one shipment row
    serialises them: whichever comes second sees the first, so the shipment always
    ends CANCELLED (requested then cancelled, or never requested)."""
    first = bootstrap.Container(settings=settings, events_client=container.events_client)
    second = bootstrap.Container(settings=settings, events_client=container.events_client)
    outcomes: Counter[str] = Counter()
    try:
        for n in range(ROUNDS):
            order_id = uuid.uuid4()
            reserved = InventoryReserved(
                order_id=order_id,
                customer_id="customer-1",
                items=[ReservedItem(sku="RACE-2", quantity=1)],
                shipping_address=ADDRESS,
                metadata=EventMetadata.new(f"corr-request-{n}"),
            )
            requested = OrderCancellationRequested(
                order_id=order_id, customer_id="customer-1", metadata=EventMetadata.new(f"corr-request-{n}")
            )
            barrier = threading.Barrier(2)
            results: dict[str, Any] = {}

            def handle(
                name: str,
                deps: Any,
                event: dict[str, Any],
                delay: float,
                barrier: threading.Barrier = barrier,
                results: dict[str, Any] = results,
            ) -> None:
                barrier.wait()
                time.sleep(delay)
                results[name] = handled(shipping.consumer, event, deps)

            threads = [
                threading.Thread(
                    target=handle, args=("request", first, eventbridge_event(reserved), head_start(n)[0])
                ),
                threading.Thread(
                    target=handle, args=("cancel", second, eventbridge_event(requested), head_start(n)[1])
                ),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)

            assert results["cancel"] == Handled.CANCELLED, results
            assert results["request"] in (Handled.REQUESTED, Handled.ORDER_CANCELLED), results
            outcomes[results["request"]] += 1
            with engine.connect() as conn:
                statuses = list(
                    conn.execute(
                        text("SELECT status FROM shipping.shipments WHERE order_id = :o"), {"o": order_id}
                    ).scalars()
                )
            assert statuses == ["CANCELLED"]
            assert len(_outbox(engine, "ShipmentCancelled", order_id)) == 1
            requested_count = len(_outbox(engine, "ShipmentRequested", order_id))
            assert requested_count == (1 if results["request"] == Handled.REQUESTED else 0)
    finally:
        first.engine.dispose()
        second.engine.dispose()
    # the shipment requested then cancelled, and never requested: each happened
    assert min(outcomes[Handled.REQUESTED], outcomes[Handled.ORDER_CANCELLED]) >= ROUNDS // 3, outcomes
    assert sum(outcomes.values()) == ROUNDS
    print(f"request/cancel outcomes over {ROUNDS} rounds: {dict(outcomes)}")
