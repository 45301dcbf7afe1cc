"""``orderflow journey ORDER_ID``: one order's timeline, in time order.

Read from the database (the local suite's; with ``--stack``, ``DATABASE_URL``): the order's
creation, every event about it in the outbox (``OrderStatusChanged`` rows are its
status changes) with when it was published, each consumer's record of handling it
(``eventing.processed_events``), its emails and its shipment; and from the
consumers' dead-letter queues, any dead letter about it (skipped, with a note, when
no queue can be reached).

Each step also names its *lane* (the service that took it: ``orders API``, ``bus``,
``inventory``, ``notifications``, ``shipping``, ``order status``) and its *group* (one
service's step: what one consumer did on one event, in one transaction, or one API
request), which the grouped text, the Mermaid sequence diagram
(``orderflow.ops.sequence``) and the local console's drawing are made of.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from orderflow.ops.target import CONSUMERS, OpsError, Target, add_target_arguments, resolve

TIE_ORDER = {"consumed": 0, "status": 1, "shipment": 2, "event": 3, "published": 4, "parked": 5}

API_LANE = "orders API"
BUS_LANE = "bus"
# Who writes events with no cause among this order's events: the HTTP functions.
SOURCE_LANES = {"orders.service": API_LANE, "inventory.service": "inventory", "shipping.service": "shipping"}
# eventing.processed_events.consumer -> lane, and the source each consumer publishes as.
CONSUMER_LANES = {
    "inventory": "inventory",
    "notifications": "notifications",
    "shipping": "shipping",
    "order-status": "order status",
}
LANE_SOURCES = {
    "inventory": "inventory.service",
    "shipping": "shipping.service",
    "order status": "orders.service",
}
FUNCTION_LANES = {
    "InventoryFunction": "inventory",
    "NotificationsFunction": "notifications",
    "ShippingFunction": "shipping",
    "OrderStatusFunction": "order status",
}
# What each lane's shipment record moves to, with the event that announces it.
SHIPMENT_CHANGES = (
    ("created_at", "REQUESTED", "ShipmentRequested"),
    ("dispatched_at", "DISPATCHED", "ShipmentDispatched"),
    ("delivered_at", "DELIVERED", "ShipmentDelivered"),
    ("cancelled_at", "CANCELLED", "ShipmentCancelled"),
)


def _database_url(args: argparse.Namespace) -> str:
    """The local suite's database; with ``--stack``, ``DATABASE_URL`` (the stack's)."""
    if not args.stack:
        return str(resolve(args).state["database"])
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise OpsError(
            "set DATABASE_URL to the stack's database (postgresql+pg8000://...) to follow an order"
        )
    return url


# A prefix of an order id as PostgreSQL and `orderflow demo` write it (lowercase, dashed).
UUID_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


def order_id_for(url: str, given: str) -> uuid.UUID:
    """The order ``given`` names: a whole id, or a prefix of one exactly one order has
    (``orderflow demo`` prints the first 8 characters)."""
    try:
        return uuid.UUID(given.strip().lower())
    except ValueError:
        pass
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return order_id_in(conn, given)
    finally:
        engine.dispose()


def order_id_in(conn: Any, given: str) -> uuid.UUID:
    """``order_id_for`` on an open connection (the console keeps one)."""
    text = given.strip().lower()
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    if not 0 < len(text) <= len(UUID_SHAPE) or not all(
        c == "-" if shape == "-" else c in "0123456789abcdef"
        for c, shape in zip(text, UUID_SHAPE, strict=False)
    ):
        raise OpsError(f"{given} is not an order id (a UUID, or the first characters of one)")
    # The ids between the prefix padded with zeros and with f's: a range on the primary key's index.
    low = uuid.UUID(text + UUID_SHAPE[len(text) :].replace("x", "0"))
    high = uuid.UUID(text + UUID_SHAPE[len(text) :].replace("x", "f"))
    from sqlalchemy import text as sql

    found = (
        conn.execute(
            sql(
                "SELECT order_id FROM orders.orders WHERE order_id BETWEEN :low AND :high"
                " ORDER BY order_id LIMIT 6"
            ),
            {"low": low, "high": high},
        )
        .scalars()
        .all()
    )
    if not found:
        raise OpsError(f"no order id starts with {text} in this database: check the id (and DATABASE_URL)")
    if len(found) > 1:
        shown = ", ".join(str(o) for o in found[:5]) + (", ..." if len(found) > 5 else "")
        raise OpsError(
            f"{text} is ambiguous: {'more than 5' if len(found) > 5 else len(found)} orders start with it"
            f" ({shown}): give more characters"
        )
    return uuid.UUID(str(found[0]))


def timeline(url: str, order_id: uuid.UUID) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return load(conn, order_id)[1]
    finally:
        engine.dispose()


def load(conn: Any, order_id: uuid.UUID) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The order as it is now, and its steps (unsorted), from one database connection."""
    from sqlalchemy import text

    order = (
        conn.execute(
            text(
                "SELECT order_id, customer_id, status, total, currency, created_at, updated_at,"
                " correlation_id FROM orders.orders WHERE order_id = :id"
            ),
            {"id": order_id},
        )
        .mappings()
        .first()
    )
    if order is None:
        raise OpsError(f"no order {order_id} in this database: check the id (and DATABASE_URL)")
    events = conn.execute(
        text(
            "SELECT event_id, source, detail_type, detail, created_at, published_at, parked_at,"
            " parked_reason FROM eventing.outbox WHERE detail->>'orderId' = :id ORDER BY created_at, id"
        ),
        {"id": str(order_id)},
    ).all()
    handled: list[Any] = []
    if events:
        handled = conn.execute(
            text(
                "SELECT consumer, event_id, processed_at FROM eventing.processed_events"
                " WHERE event_id = ANY(:ids) ORDER BY processed_at"
            ),
            {"ids": [e.event_id for e in events]},
        ).all()
    emails = conn.execute(
        text("SELECT * FROM notifications.emails WHERE order_id = :id"), {"id": order_id}
    ).mappings()
    shipments = conn.execute(
        text("SELECT * FROM shipping.shipments WHERE order_id = :id"), {"id": order_id}
    ).mappings()
    return dict(order), _steps(order, events, handled, list(emails), list(shipments))


def _steps(
    order: Any, events: list[Any], handled: list[Any], emails: list[Any], shipments: list[Any]
) -> list[dict[str, Any]]:
    by_id = {str(e.event_id): e for e in events}
    handlers: dict[str, set[str]] = {}
    for h in handled:
        handlers.setdefault(str(h.event_id), set()).add(CONSUMER_LANES.get(h.consumer, h.consumer))
    # Who wrote each event, and in which service step: the consumer that handled its cause
    # (its causationId) and publishes as its source; else the step that wrote its cause;
    # else an HTTP function (a request: the order placed, a cancellation, a dispatch).
    writer: dict[str, tuple[str, str]] = {}
    for e in events:
        eid = str(e.event_id)
        cause = str((e.detail.get("metadata") or {}).get("causationId") or "")
        lanes = [lane for lane in handlers.get(cause, ()) if LANE_SOURCES.get(lane) == e.source]
        if lanes:
            writer[eid] = (lanes[0], f"{lanes[0]} on {cause}")
        elif cause in writer and by_id[cause].source == e.source:
            writer[eid] = writer[cause]
        else:
            lane = SOURCE_LANES.get(e.source, e.source)
            writer[eid] = (lane, f"{lane} at {e.created_at.isoformat()}")
    first_of = {e.detail_type: str(e.event_id) for e in reversed(events)}

    def group_of(detail_type: str, lane: str, at: datetime) -> str:
        eid = first_of.get(detail_type)
        return writer[eid][1] if eid else f"{lane} at {at.isoformat()}"

    steps: list[dict[str, Any]] = [
        {
            "at": order["created_at"],
            "kind": "order",
            "what": "order placed (status PENDING)",
            "lane": API_LANE,
            "group": group_of("OrderCreated", API_LANE, order["created_at"]),
            "status": "PENDING",
        }
    ]
    for e in events:
        eid = str(e.event_id)
        lane, group = writer[eid]
        common = {"lane": lane, "group": group, "eventId": eid, "detailType": e.detail_type}
        if e.detail_type == "OrderStatusChanged":
            reason = e.detail.get("rejectionReason")
            steps.append(
                {
                    "at": e.created_at,
                    "kind": "status",
                    "what": f"status {e.detail.get('previousStatus')} → {e.detail.get('status')}"
                    + (f" ({reason})" if reason else ""),
                    "status": e.detail.get("status"),
                    **common,
                }
            )
        steps.append(
            {
                "at": e.created_at,
                "kind": "event",
                "what": f"{e.source} wrote {e.detail_type} ({eid})",
                **common,
            }
        )
        if e.published_at:
            steps.append(
                {
                    "at": e.published_at,
                    "kind": "published",
                    "what": f"{e.detail_type} published to the bus",
                    **common,
                }
            )
        elif e.parked_at:
            steps.append(
                {
                    "at": e.parked_at,
                    "kind": "parked",
                    "what": f"{e.detail_type} parked, not published: {e.parked_reason}",
                    "failed": True,
                    **common,
                }
            )
    for h in handled:
        eid = str(h.event_id)
        lane = CONSUMER_LANES.get(h.consumer, h.consumer)
        e = by_id[eid]
        steps.append(
            {
                "at": h.processed_at,
                "kind": "consumed",
                "what": f"{h.consumer} handled {e.detail_type}",
                "lane": lane,
                "group": f"{lane} on {eid}",
                "eventId": eid,
                "detailType": e.detail_type,
            }
        )
    for email in emails:
        at = email.get("sent_at") or email.get("claimed_at")
        status = email.get("status")
        steps.append(
            {
                "at": at,
                "kind": "email",
                "what": f"email {email.get('kind') or ''} {status}".replace("  ", " "),
                "lane": "notifications",
                "group": f"notifications on {email['event_id']}",
            }
        )
    # Each change of the shipment at its own moment: the record holds only its latest status.
    for shipment in shipments:
        for column, status, announced_by in SHIPMENT_CHANGES:
            at = shipment.get(column)
            if at is None or (status == "REQUESTED" and shipment.get("items") is None):
                continue  # a cancellation before any request: never REQUESTED
            what = f"shipment {shipment['shipment_id']} {status}"
            if status == "DISPATCHED" and shipment.get("carrier"):
                what += f" ({shipment['carrier']} {shipment.get('tracking_number') or ''})".replace(" )", ")")
            steps.append(
                {
                    "at": at,
                    "kind": "shipment",
                    "what": what,
                    "lane": "shipping",
                    "group": group_of(announced_by, "shipping", at),
                    "status": status,
                }
            )
    return steps


def dead_letters(args: argparse.Namespace, order_id: uuid.UUID) -> tuple[list[dict[str, Any]], str | None]:
    try:
        return dead_letters_in(resolve(args), order_id), None
    except Exception as exc:  # the journey is still worth showing without the queues
        from orderflow.errors import one_line

        return [], f"dead-letter queues not read: {one_line(exc)}"


def dead_letters_in(target: Target, order_id: uuid.UUID) -> list[dict[str, Any]]:
    """The order's dead letters, each a step on the lane of the consumer that gave up."""
    from orderflow.ops.dlq import depth, peek

    found = []
    for function_id in CONSUMERS:
        url = target.dlq_url(function_id)
        if not depth(target, url):
            continue  # nothing to receive: the queue is left alone
        for letter in peek(target, url, visibility_s=2):
            event = letter.event or {}
            detail = event.get("detail") or {}
            if detail.get("orderId") != str(order_id):
                continue
            lane = FUNCTION_LANES.get(function_id, function_id)
            eid = str((detail.get("metadata") or {}).get("eventId") or "")
            found.append(
                {
                    "at": datetime.fromtimestamp(letter.sent_at or 0, tz=UTC),
                    "kind": "dead-letter",
                    "what": f"{event.get('detail-type')} dead-lettered for {function_id}:"
                    f" {letter.error or 'failed on every receive (its log says why)'}",
                    "lane": lane,
                    "group": f"{lane} on {eid}",
                    "eventId": eid,
                    "detailType": event.get("detail-type"),
                    "function": function_id,
                    "messageId": letter.message_id,
                    "failed": True,
                }
            )
    return found


def in_order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order's creation first (its clock and the outbox's differ by the transaction's
    length), then everything in time order; within one transaction (one timestamp) the
    event handled comes before what handling it wrote."""
    return sorted(steps, key=lambda s: (s["kind"] != "order", s["at"], TIE_ORDER.get(s["kind"], 9)))


def run(args: argparse.Namespace) -> int:
    from orderflow.ops import sequence

    url = _database_url(args)
    order_id = order_id_for(url, args.order_id)
    steps = timeline(url, order_id)
    letters, note = dead_letters(args, order_id)
    steps = in_order(steps + letters)
    if args.json:
        print(json.dumps({"orderId": str(order_id), "steps": steps, "note": note}, default=_iso, indent=2))
        return 0
    if args.format == "mermaid":
        print(sequence.mermaid(steps), end="")
        return 0
    print(f"order {order_id}")
    for title, grouped in sequence.groups(steps):
        print(f"  {title}")
        for step in grouped:
            print(f"    {_iso(step['at'])}  {step['kind']:<11} {step['what']}")
    if note:
        print(f"  ({note})")
    return 0


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def register(subparsers: Any) -> None:
    journey = subparsers.add_parser(
        "journey",
        help="one order's timeline: status changes, events, consumers, emails, shipment, dead letters",
        description="One order's timeline, grouped by service step, from the database and the"
        " dead-letter queues; or the same as a Mermaid sequence diagram.",
    )
    journey.add_argument(
        "order_id",
        metavar="ORDER_ID",
        help="the order's id, or its first characters (as `orderflow demo` prints)",
    )
    shape = journey.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="JSON for scripts")
    shape.add_argument(
        "--format",
        choices=("text", "mermaid"),
        default="text",
        help="text (default), or a Mermaid sequence diagram to paste into an issue or a pull request",
    )
    add_target_arguments(journey)
    journey.set_defaults(run=run)
