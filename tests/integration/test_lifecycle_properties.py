"""The order lifecycle as a seeded random schedule, on a real PostgreSQL.

Many orders over few SKUs; every event each use case announces (read back from
the outbox, as the relay would publish it) is delivered to every consumer the
contract names, at least once, in a shuffled order with duplicates; admin
dispatches, deliveries, physical recounts and customers' cancellations (some at
once, before any event is handled) are interleaved at random. After every step:

* for every SKU, ``0 <= reserved <= onHand``;
* ``reserved`` equals the quantities of orders reserved and neither dispatched
  nor released;
* ``onHand`` equals the last count minus everything dispatched since that count;
* no order's status ever moves backwards (CANCELLING only from PENDING, CONFIRMED
  or SHIPPING; CANCELLED only from CANCELLING; REJECTED only from PENDING);
* no order has both goods that left and a released reservation;

and at the end every order is ``DELIVERED``, ``REJECTED`` or ``CANCELLED`` and no
customer got an email of one kind twice.
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
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCancellationRequested,
    OrderCancelled,
    OrderCreated,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentRequested,
)
from inventory.adapters.repository import InventoryUnitOfWork
from inventory.domain.commands import SetStock
from inventory.domain.model import StockBelowReserved
from inventory.usecases import Handled, consume_reservation, release_reservation, reserve_stock, set_stock
from notifications.adapters.repository import NotificationsUnitOfWork
from notifications.domain.confirmation import ConfirmationEmail
from notifications.usecases import (
    send_cancellation_notice,
    send_dispatch_notice,
    send_order_confirmation,
    send_rejection_notice,
)
from orders.adapters.repository import OrdersUnitOfWork
from orders.domain.commands import CancelOrder, PlaceOrder, UpsertProduct
from orders.domain.model import OrderNotCancellable
from orders.usecases import apply_status_event, cancel_order, order_created, place_order, upsert_product
from shipping.adapters.repository import ShippingUnitOfWork
from shipping.domain.commands import DeliverShipment, DispatchShipment
from shipping.domain.model import ShipmentConflict
from shipping.usecases import cancel_shipment, deliver_shipment, dispatch_shipment, request_shipment

pytestmark = [pytest.mark.db]

SKUS = ("P-1", "P-2", "P-3")
ORDERS = 24
PATH = ["PENDING", "CONFIRMED", "SHIPPING", "SHIPPED", "DELIVERED"]
# Forward is up this ranking; CANCELLING sits between SHIPPING and SHIPPED, CANCELLED past all.
RANK = {**{status: float(i) for i, status in enumerate(PATH)}, "CANCELLING": 2.5, "CANCELLED": 9.0}
CAME_FROM = {  # the only statuses each of these may follow
    "REJECTED": {"PENDING"},
    "CANCELLING": {"PENDING", "CONFIRMED", "SHIPPING"},
    "CANCELLED": {"CANCELLING"},
}
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
    OrderCancellationRequested: ("shipping",),
    ShipmentCancelled: ("status",),
    ShipmentCancellationRefused: ("status",),
    OrderCancelled: ("inventory", "notifications"),
    InventoryReleased: (),
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
        self.customers: dict[uuid.UUID, str] = {}
        self.cancels_asked = 0

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
        elif isinstance(event, OrderCancelled):
            self.announce(release_reservation(event, uow).outbox_ids)
        elif isinstance(event, ShipmentDispatched) and consume_reservation(event, uow) is Handled.CONSUMED:
            for item in event.items:
                self.dispatched_since_count[item.sku] += item.quantity

    def _to_shipping(self, event: DomainEvent) -> None:
        if isinstance(event, OrderCancellationRequested):
            self.announce(cancel_shipment(event, ShippingUnitOfWork(self.engine)).outbox_ids)
            return
        assert isinstance(event, InventoryReserved)
        self.announce(request_shipment(event, ShippingUnitOfWork(self.engine)).outbox_ids)

    def _to_status(self, event: Any) -> None:
        update = apply_status_event(event, OrdersUnitOfWork(self.engine))
        assert update.conflict is None, update.conflict
        self.announce(update.outbox_ids)

    def _to_notifications(self, event: DomainEvent) -> None:
        uow = NotificationsUnitOfWork(self.engine)
        if isinstance(event, OrderCreated):
            send_order_confirmation(event, uow, self.sender)
        elif isinstance(event, ShipmentDispatched | InventoryReservationFailed | OrderCancelled):
            send = {
                ShipmentDispatched: send_dispatch_notice,
                InventoryReservationFailed: send_rejection_notice,
                OrderCancelled: send_cancellation_notice,
            }[type(event)]
            # ahead of its OrderCreated, the email is kept and goes out with the confirmation
            send(event, uow, self.sender)  # type: ignore[arg-type]

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

    def cancel_one(self) -> None:
        """A customer asks to cancel one of their orders (whatever its status)."""
        order_id = self.rng.choice(self.order_ids)
        command = CancelOrder(
            order_id, self.customers[order_id], reason=self.rng.choice([None, "changed my mind"])
        )
        try:
            result = cancel_order(command, OrdersUnitOfWork(self.engine))
        except OrderNotCancellable as refused:
            assert refused.status.value in ("SHIPPED", "DELIVERED", "REJECTED"), refused.status
            return
        self.cancels_asked += result.accepted
        self.announce(result.outbox_ids)

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
            left_and_released = conn.execute(
                text(
                    "SELECT count(*) FROM shipping.shipments sh JOIN inventory.settlements s "
                    "ON s.order_id = sh.order_id WHERE sh.status IN ('DISPATCHED', 'DELIVERED') "
                    "AND s.settlement = 'RELEASED'"
                )
            ).scalar()
        assert left_and_released == 0
        for sku, (on_hand, reserved) in self.stock().items():
            assert 0 <= reserved <= on_hand, (sku, on_hand, reserved)
            assert reserved == held.get(sku, 0), (sku, reserved, held)
            assert on_hand == self.counted[sku] - self.dispatched_since_count[sku], sku
        for order_id, status in statuses.items():
            seen = self.statuses[order_id]
            if not seen or seen[-1] != status:
                if seen and status != "REJECTED":
                    assert RANK[status] > RANK[seen[-1]], (order_id, seen, status)
                if status in CAME_FROM:
                    assert seen and seen[-1] in CAME_FROM[status], (order_id, seen, status)
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
        world.customers[placed.order.order_id] = command.customer_id
        world.announce(placed.outbox_ids)
        assert order_created(placed.order) is not None
        world.check()
        if rng.random() < 0.15:  # cancelled at once: before inventory or shipping heard of it
            world.cancel_one()
            world.check()

    steps = 0
    while world.inbox or world.requested_shipments("REQUESTED") or world.requested_shipments("DISPATCHED"):
        roll = rng.random()
        if world.inbox and roll < 0.66:
            world.deliver_one()
        elif roll < 0.78:
            world.dispatch_one()
        elif roll < 0.88:
            world.deliver_shipment_one()
        elif roll < 0.95:
            world.cancel_one()
        else:
            world.recount_one()
        world.check()
        steps += 1
        assert steps < 5000, "the schedule does not end"

    with engine.connect() as conn:
        final = Counter(conn.execute(text("SELECT status FROM orders.orders")).scalars())
        failed = conn.execute(
            text("SELECT count(*) FROM inventory.order_outcomes WHERE outcome = 'FAILED'")
        ).scalar()
    assert set(final) <= {"DELIVERED", "REJECTED", "CANCELLED"}, final
    assert sum(final.values()) == ORDERS
    # the schedule exercised the whole life, and the cancellation's
    assert final["DELIVERED"] > 0 and final["CANCELLED"] > 0, final
    assert world.cancels_asked >= final["CANCELLED"]
    world.check()
    # every order ended, so every reservation ended too: consumed, or released
    assert all(reserved == 0 for _, reserved in world.stock().values()), world.stock()

    def kind(subject: str) -> str:
        for marker in ("We received", "on its way", "could not be fulfilled", "is cancelled"):
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
    # every failed reservation is told, even when a cancellation asked first won the order
    assert len(rejections) == failed >= final["REJECTED"]
    cancellations = [e for e in world.sender.sent if e.subject.endswith("is cancelled")]
    assert len(cancellations) == final["CANCELLED"]
