"""The order lifecycle as a seeded random schedule, on a real PostgreSQL.

Many orders over few SKUs; every event each use case announces (read back from
the outbox, as the relay would publish it) is delivered to every consumer the
contract names, at least once, in a shuffled order with duplicates; admin
dispatches, deliveries and physical recounts are interleaved at random. After
every step:

* for every SKU, ``0 <= reserved <= onHand``;
* ``reserved`` equals the quantities of orders reserved and not yet dispatched;
* ``onHand`` equals the last count minus everything dispatched since that count;
* no order's status ever moves backwards;

and at the end every order is ``DELIVERED`` or ``REJECTED`` and no customer got
an email of one kind twice. (Cancellation is not part of this schedule yet.)
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from common.events import (
    ALL_EVENTS,
    DomainEvent,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
)
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.domain.commands import SetStock
from inventory.domain.model import StockBelowReserved
from inventory.usecases import Handled, consume_reservation, reserve_stock, set_stock
from notifications.adapters.repository import NotificationsUnitOfWork
from notifications.domain.confirmation import ConfirmationEmail
from notifications.domain.model import RecipientUnknown
from notifications.usecases import send_dispatch_notice, send_order_confirmation, send_rejection_notice
from orders.adapters.repository import OrdersUnitOfWork
from orders.domain.commands import PlaceOrder, UpsertProduct
from orders.usecases import apply_status_event, order_created, place_order, upsert_product
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.domain.commands import DeliverShipment, DispatchShipment
from shipping.domain.model import ShipmentConflict
from shipping.usecases import deliver_shipment, dispatch_shipment, request_shipment

pytestmark = [pytest.mark.db]

SKUS = ("P-1", "P-2", "P-3")
ORDERS = 24
PATH = ["PENDING", "CONFIRMED", "SHIPPING", "SHIPPED", "DELIVERED"]
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "line2": None,
    "city": "London",
    "postalCode": "N1 9GU",
    "country": "GB",
}
BY_TYPE = {e.DETAIL_TYPE: e for e in ALL_EVENTS}
CONSUMERS: dict[type[DomainEvent], tuple[str, ...]] = {  # the contract's "who consumes what"
    OrderCreated: ("inventory", "notifications"),
    InventoryReserved: ("shipping", "status"),
    InventoryReservationFailed: ("notifications", "status"),
    ShipmentRequested: ("status",),
    ShipmentDispatched: ("inventory", "notifications", "status"),
    ShipmentDelivered: ("status",),
}


class Sender:
    def __init__(self) -> None:
        self.sent: list[ConfirmationEmail] = []

    def send(self, email: ConfirmationEmail) -> str:
        self.sent.append(email)
        return f"message-{len(self.sent)}"


class World:
    def __init__(self, engine: Any, rng: random.Random) -> None:
        self.engine = engine
        self.rng = rng
        self.inbox: list[tuple[str, DomainEvent]] = []
        self.sender = Sender()
        self.counted: dict[str, int] = {}
        self.dispatched_since_count: Counter[str] = Counter()
        self.statuses: dict[uuid.UUID, list[str]] = defaultdict(list)
        self.order_ids: list[uuid.UUID] = []

    # ---------------------------------------------------------------- plumbing
    def announce(self, outbox_ids: tuple[int, ...] | list[int]) -> None:
        """What the relay would publish: each row, to each of its consumers."""
        if not outbox_ids:
            return
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT detail_type, detail FROM eventing.outbox WHERE id = ANY(:ids) ORDER BY id"),
                {"ids": list(outbox_ids)},
            ).all()
        for row in rows:
            event = BY_TYPE[row.detail_type].model_validate(row.detail)
            for consumer in CONSUMERS.get(type(event), ()):
                self.inbox.append((consumer, event))

    def deliver_one(self) -> None:
        consumer, event = self.inbox.pop(self.rng.randrange(len(self.inbox)))
        if self.rng.random() < 0.3:  # at least once: some deliveries come again later
            self.inbox.append((consumer, event))
        getattr(self, f"_to_{consumer}")(event)

    def _to_inventory(self, event: DomainEvent) -> None:
        uow = InventoryUnitOfWork(self.engine)
        if isinstance(event, OrderCreated):
            self.announce(reserve_stock(event, uow).outbox_ids)
        elif isinstance(event, ShipmentDispatched) and consume_reservation(event, uow) is Handled.CONSUMED:
            for item in event.items:
                self.dispatched_since_count[item.sku] += item.quantity

    def _to_shipping(self, event: DomainEvent) -> None:
        assert isinstance(event, InventoryReserved)
        self.announce(request_shipment(event, ShippingUnitOfWork(self.engine)).outbox_ids)

    def _to_status(self, event: Any) -> None:
        update = apply_status_event(event, OrdersUnitOfWork(self.engine))
        assert update.conflict is None, update.conflict

    def _to_notifications(self, event: DomainEvent) -> None:
        uow = NotificationsUnitOfWork(self.engine)
        if isinstance(event, OrderCreated):
            send_order_confirmation(event, uow, self.sender)
        elif isinstance(event, ShipmentDispatched | InventoryReservationFailed):
            send = send_dispatch_notice if isinstance(event, ShipmentDispatched) else send_rejection_notice
            try:
                send(event, uow, self.sender)  # type: ignore[arg-type]
            except RecipientUnknown:
                # ahead of its OrderCreated: the invocation fails and Lambda retries it
                self.inbox.append(("notifications", event))

    # ---------------------------------------------------------------- admins
    def requested_shipments(self, status: str) -> list[uuid.UUID]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT order_id FROM shipping.shipments WHERE status = :s ORDER BY order_id"),
                    {"s": status},
                ).scalars()
            )

    def dispatch_one(self) -> None:
        ready = self.requested_shipments("REQUESTED")
        if ready:
            order_id = self.rng.choice(ready)
            command = DispatchShipment(order_id, "DHL", f"T-{order_id.hex[:6]}")
            self.announce(dispatch_shipment(command, ShippingUnitOfWork(self.engine)).outbox_ids)
            # the same dispatch again is answered unchanged; another one refused
            assert dispatch_shipment(command, ShippingUnitOfWork(self.engine)).outbox_ids == ()
            with pytest.raises(ShipmentConflict):
                dispatch_shipment(DispatchShipment(order_id, "UPS", "X"), ShippingUnitOfWork(self.engine))

    def deliver_shipment_one(self) -> None:
        left = self.requested_shipments("DISPATCHED")
        if left:
            change = deliver_shipment(DeliverShipment(self.rng.choice(left)), ShippingUnitOfWork(self.engine))
            self.announce(change.outbox_ids)

    def recount_one(self) -> None:
        sku = self.rng.choice(SKUS)
        _, reserved = self.stock()[sku]
        count = self.rng.randint(max(0, reserved - 2), reserved + 6)
        try:
            set_stock(SetStock(sku, count), InventoryUnitOfWork(self.engine))
        except StockBelowReserved:
            assert count < reserved
            return
        assert count >= reserved
        self.counted[sku] = count
        self.dispatched_since_count[sku] = 0

    # ---------------------------------------------------------------- checks
    def stock(self) -> dict[str, tuple[int, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT sku, on_hand, reserved FROM inventory.stock")).all()
        return {r.sku: (r.on_hand, r.reserved) for r in rows}

    def check(self) -> None:
        with self.engine.connect() as conn:
            held = dict(
                conn.execute(
                    text(
                        "SELECT r.sku, sum(r.quantity) FROM inventory.reservations r "
                        "LEFT JOIN inventory.settlements s ON s.order_id = r.order_id "
                        "WHERE s.order_id IS NULL GROUP BY r.sku"
                    )
                ).all()
            )
            statuses = dict(conn.execute(text("SELECT order_id, status FROM orders.orders")).all())
        for sku, (on_hand, reserved) in self.stock().items():
            assert 0 <= reserved <= on_hand, (sku, on_hand, reserved)
            assert reserved == held.get(sku, 0), (sku, reserved, held)
            assert on_hand == self.counted[sku] - self.dispatched_since_count[sku], sku
        for order_id, status in statuses.items():
            seen = self.statuses[order_id]
            if not seen or seen[-1] != status:
                if seen and status != "REJECTED":
                    assert PATH.index(status) > PATH.index(seen[-1]), (order_id, seen, status)
                if status == "REJECTED":
                    assert seen in ([], ["PENDING"]), (order_id, seen)
                seen.append(status)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_schedule_keeps_the_stock_invariants_and_ends_every_order_once(engine, seed):
    rng = random.Random(seed)
    world = World(engine, rng)
    for sku in SKUS:
        upsert_product(UpsertProduct(sku, sku, Decimal("1.00"), "USD"), OrdersUnitOfWork(engine))
        count = rng.randint(3, 12)
        set_stock(SetStock(sku, count), InventoryUnitOfWork(engine))
        world.counted[sku] = count

    for n in range(ORDERS):
        skus = rng.sample(SKUS, rng.randint(1, 2))
        command = PlaceOrder(
            customer_id=f"c-{n}",
            customer_email=f"c{n}@example.com",
            quantities=[(sku, rng.randint(1, 4)) for sku in skus],
            shipping_address=ADDRESS,
            correlation_id=f"corr-{seed}-{n}",
            request_hash="h",
        )
        placed = place_order(command, OrdersUnitOfWork(engine))
        world.order_ids.append(placed.order.order_id)
        world.announce(placed.outbox_ids)
        assert order_created(placed.order) is not None

    steps = 0
    while world.inbox or world.requested_shipments("REQUESTED") or world.requested_shipments("DISPATCHED"):
        roll = rng.random()
        if world.inbox and roll < 0.7:
            world.deliver_one()
        elif roll < 0.82:
            world.dispatch_one()
        elif roll < 0.94:
            world.deliver_shipment_one()
        else:
            world.recount_one()
        world.check()
        steps += 1
        assert steps < 5000, "the schedule does not end"

    with engine.connect() as conn:
        final = Counter(conn.execute(text("SELECT status FROM orders.orders")).scalars())
    assert set(final) <= {"DELIVERED", "REJECTED"}, final
    assert sum(final.values()) == ORDERS
    assert final["DELIVERED"] > 0  # the schedule exercised the whole life

    def kind(subject: str) -> str:
        for marker in ("We received", "on its way", "could not be fulfilled"):
            if marker in subject:
                return marker
        raise AssertionError(subject)

    kinds = Counter((email.to, kind(email.subject)) for email in world.sender.sent)
    assert all(n == 1 for n in kinds.values()), kinds
    receipts = [e for e in world.sender.sent if e.subject.startswith("We received")]
    assert len(receipts) == ORDERS
    dispatches = [e for e in world.sender.sent if "on its way" in e.subject]
    assert len(dispatches) == final["DELIVERED"]
    rejections = [e for e in world.sender.sent if "could not be fulfilled" in e.subject]
    assert len(rejections) == final["REJECTED"]
