"""``orderflow journey ORDER_ID``: one order's timeline, in time order.

Read from the database (the local suite's; with ``--stack``, ``DATABASE_URL``): the order's
creation, every event about it in the outbox (``OrderStatusChanged`` rows are its
status changes) with when it was published, each consumer's record of handling it
(``eventing.processed_events``), its emails and its shipment; and from the
consumers' dead-letter queues, any dead letter about it (skipped, with a note, when
no queue can be reached).
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from orderflow.ops.target import CONSUMERS, OpsError, add_target_arguments, resolve

TIE_ORDER = {"consumed": 0, "status": 1, "shipment": 2, "event": 3, "published": 4}


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
    from sqlalchemy import create_engine
    from sqlalchemy import text as sql

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
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
    finally:
        engine.dispose()
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
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    steps: list[dict[str, Any]] = []
    try:
        with engine.connect() as conn:
            order = conn.execute(
                text("SELECT status, created_at, correlation_id FROM orders.orders WHERE order_id = :id"),
                {"id": order_id},
            ).first()
            if order is None:
                raise OpsError(f"no order {order_id} in this database: check the id (and DATABASE_URL)")
            steps.append({"at": order.created_at, "kind": "order", "what": "order placed (status PENDING)"})
            events = conn.execute(
                text(
                    "SELECT event_id, source, detail_type, detail, created_at, published_at"
                    " FROM eventing.outbox"
                    " WHERE detail->>'orderId' = :id ORDER BY created_at, id"
                ),
                {"id": str(order_id)},
            ).all()
            for e in events:
                if e.detail_type == "OrderStatusChanged":
                    reason = e.detail.get("rejectionReason")
                    steps.append(
                        {
                            "at": e.created_at,
                            "kind": "status",
                            "what": f"status {e.detail.get('previousStatus')} → {e.detail.get('status')}"
                            + (f" ({reason})" if reason else ""),
                        }
                    )
                steps.append(
                    {
                        "at": e.created_at,
                        "kind": "event",
                        "what": f"{e.source} wrote {e.detail_type} ({e.event_id})",
                        "eventId": str(e.event_id),
                    }
                )
                if e.published_at:
                    steps.append(
                        {
                            "at": e.published_at,
                            "kind": "published",
                            "what": f"{e.detail_type} published to the bus",
                        }
                    )
            ids = [e.event_id for e in events]
            if ids:
                consumed = conn.execute(
                    text(
                        "SELECT p.consumer, p.event_id, p.processed_at, o.detail_type"
                        " FROM eventing.processed_events p JOIN eventing.outbox o USING (event_id)"
                        " WHERE p.event_id = ANY(:ids)"
                    ),
                    {"ids": ids},
                ).all()
                for c in consumed:
                    steps.append(
                        {
                            "at": c.processed_at,
                            "kind": "consumed",
                            "what": f"{c.consumer} handled {c.detail_type}",
                        }
                    )
            for email in conn.execute(
                text("SELECT * FROM notifications.emails WHERE order_id = :id"), {"id": order_id}
            ).mappings():
                steps.append(
                    {
                        "at": email.get("sent_at") or email.get("claimed_at"),
                        "kind": "email",
                        "what": f"email {email.get('kind') or ''} {email.get('status')}".replace("  ", " "),
                    }
                )
            for shipment in conn.execute(
                text("SELECT * FROM shipping.shipments WHERE order_id = :id"), {"id": order_id}
            ).mappings():
                steps.append(
                    {
                        "at": shipment["created_at"],
                        "kind": "shipment",
                        "what": f"shipment {shipment['shipment_id']} {shipment['status']}",
                    }
                )
    finally:
        engine.dispose()
    return steps


def dead_letters(args: argparse.Namespace, order_id: uuid.UUID) -> tuple[list[dict[str, Any]], str | None]:
    from orderflow.ops.dlq import _receive_all, _release, decode

    try:
        target = resolve(args)
        found = []
        for function_id in CONSUMERS:
            url = target.dlq_url(function_id)
            messages = _receive_all(target, url, visibility_s=2)
            _release(target, url, messages)
            for letter in map(decode, messages):
                event = letter.event or {}
                if (event.get("detail") or {}).get("orderId") == str(order_id):
                    found.append(
                        {
                            "at": datetime.fromtimestamp(letter.sent_at or 0, tz=UTC),
                            "kind": "dead-letter",
                            "what": f"{event.get('detail-type')} dead-lettered for {function_id}:"
                            f" {letter.error or 'failed on every receive (its log says why)'}",
                        }
                    )
        return found, None
    except Exception as exc:  # the journey is still worth showing without the queues
        from orderflow.errors import one_line

        return [], f"dead-letter queues not read: {one_line(exc)}"


def run(args: argparse.Namespace) -> int:
    url = _database_url(args)
    order_id = order_id_for(url, args.order_id)
    steps = timeline(url, order_id)
    letters, note = dead_letters(args, order_id)
    # The order's creation first (its clock and the outbox's differ by the transaction's
    # length), then everything in time order; within one transaction (one timestamp) the
    # event handled comes before what handling it wrote.
    steps = sorted(
        steps + letters, key=lambda s: (s["kind"] != "order", s["at"], TIE_ORDER.get(s["kind"], 9))
    )
    if args.json:
        print(json.dumps({"orderId": str(order_id), "steps": steps, "note": note}, default=_iso, indent=2))
        return 0
    print(f"order {order_id}")
    for step in steps:
        print(f"  {_iso(step['at'])}  {step['kind']:<11} {step['what']}")
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
        description="One order's timeline, in time order, from the database and the dead-letter queues.",
    )
    journey.add_argument(
        "order_id",
        metavar="ORDER_ID",
        help="the order's id, or its first characters (as `orderflow demo` prints)",
    )
    journey.add_argument("--json", action="store_true", help="JSON for scripts")
    add_target_arguments(journey)
    journey.set_defaults(run=run)
