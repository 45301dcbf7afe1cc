"""One order's journey as groups, Mermaid and SVG, built from the rows the database
would give (``orderflow.ops.journey._steps``) for a shipped order whose dispatch email
was dead-lettered and one of whose events was parked."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from orderflow.console.diagram import svg
from orderflow.ops import journey, sequence
from tests.support import mermaid

T0 = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
ORDER = uuid.uuid4()


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def event(
    ms: int, source: str, detail_type: str, cause: uuid.UUID | None = None, **row: Any
) -> SimpleNamespace:
    eid = uuid.uuid4()
    detail = {"orderId": str(ORDER), "metadata": {"eventId": str(eid), "causationId": cause and str(cause)}}
    detail.update(row.pop("detail", {}))
    fields = {"published_at": at(ms + 20), "parked_at": None, "parked_reason": None, **row}
    return SimpleNamespace(
        event_id=eid, source=source, detail_type=detail_type, detail=detail, created_at=at(ms), **fields
    )


def handled(consumer: str, e: SimpleNamespace, ms: int) -> SimpleNamespace:
    return SimpleNamespace(consumer=consumer, event_id=e.event_id, processed_at=at(ms))


def shipped_order() -> list[dict[str, Any]]:
    created = event(0, "orders.service", "OrderCreated")
    reserved = event(100, "inventory.service", "InventoryReserved", created.event_id)
    confirmed = event(
        200,
        "orders.service",
        "OrderStatusChanged",
        reserved.event_id,
        detail={"previousStatus": "PENDING", "status": "CONFIRMED"},
    )
    requested = event(210, "shipping.service", "ShipmentRequested", reserved.event_id)
    shipping = event(
        300,
        "orders.service",
        "OrderStatusChanged",
        requested.event_id,
        detail={"previousStatus": "CONFIRMED", "status": "SHIPPING"},
        published_at=None,
        parked_at=at(400),
        parked_reason="ValidationException; #bad <entry>",
    )
    dispatched = event(5000, "shipping.service", "ShipmentDispatched")
    order = {"created_at": at(1)}
    steps = journey._steps(
        order,
        [created, reserved, confirmed, requested, shipping, dispatched],
        [
            handled("inventory", created, 100),
            handled("notifications", created, 120),
            handled("order-status", reserved, 200),
            handled("shipping", reserved, 210),
            handled("order-status", requested, 300),
            handled("inventory", dispatched, 5100),
        ],
        [{"kind": "CONFIRMATION", "status": "SENT", "event_id": created.event_id, "sent_at": at(150)}],
        [
            {
                "shipment_id": uuid.uuid4(),
                "items": [{"sku": "SKU-1", "quantity": 1}],
                "created_at": at(210),
                "dispatched_at": at(5000),
                "delivered_at": None,
                "cancelled_at": None,
                "carrier": "DHL",
                "tracking_number": "JD0146",
            }
        ],
    )
    letter = {
        "at": at(6000),
        "kind": "dead-letter",
        "what": "ShipmentDispatched dead-lettered for NotificationsFunction: SES down; <script>",
        "lane": "notifications",
        "group": f"notifications on {dispatched.event_id}",
        "eventId": str(dispatched.event_id),
        "detailType": "ShipmentDispatched",
        "failed": True,
    }
    return journey.in_order([*steps, letter])


def test_each_step_is_on_the_lane_of_the_service_that_took_it_and_in_its_group() -> None:
    titles = [
        (title, [s["what"].split(" (")[0] for s in members])
        for title, members in sequence.groups(shipped_order())
    ]
    assert [t for t, _ in titles] == [
        "orders API, POST /orders",
        "inventory, on OrderCreated",
        "notifications, on OrderCreated",
        "order status, on InventoryReserved",
        "shipping, on InventoryReserved",
        "order status, on ShipmentRequested",
        "shipping, POST /shipments/{id}/dispatch (admin)",
        "inventory, on ShipmentDispatched",
        "notifications, on ShipmentDispatched",
    ]
    groups = dict(titles)
    assert groups["shipping, on InventoryReserved"][:3] == [
        "shipping handled InventoryReserved",
        groups["shipping, on InventoryReserved"][1],
        "shipping.service wrote ShipmentRequested",
    ]
    assert groups["order status, on ShipmentRequested"][1] == "status CONFIRMED → SHIPPING"
    assert groups["notifications, on OrderCreated"] == [
        "notifications handled OrderCreated",
        "email CONFIRMATION SENT",
    ]


def test_the_shipment_shows_each_status_at_its_own_moment() -> None:
    shipment = [(s["at"], s["what"].split(" ", 2)[2]) for s in shipped_order() if s["kind"] == "shipment"]
    assert shipment == [(at(210), "REQUESTED"), (at(5000), "DISPATCHED (DHL JD0146)")]


def test_mermaid_reads_back_as_the_same_lanes_arrows_and_notes() -> None:
    diagram = mermaid.parse(sequence.mermaid(shipped_order()))
    assert list(diagram.participants.values()) == list(sequence.LANES)
    arrows = [
        (a, arrow, b, mermaid.unescape(text).split(" ", 1)[1]) for a, arrow, b, text in diagram.messages
    ]
    pairs = [(a, b, text.split(" (")[0]) for a, _, b, text in arrows]
    assert pairs[:4] == [
        ("api", "bus", "OrderCreated"),
        ("bus", "inventory", "OrderCreated"),
        ("inventory", "bus", "InventoryReserved"),
        ("bus", "notifications", "OrderCreated"),
    ]
    assert ("shipping", "bus", "ShipmentDispatched") in pairs
    assert ("bus", "status", "ShipmentRequested") in pairs
    # the failures: the parked row and the dead letter, each a cross in a red band
    failed = [(a, b, text) for a, arrow, b, text in arrows if arrow == "-x"]
    assert failed == [
        ("status", "bus", "OrderStatusChanged (ValidationException; #bad <entry>)"),
        ("bus", "notifications", "ShipmentDispatched dead-lettered (SES down; <script>)"),
    ]
    assert diagram.failure_bands == 2
    notes = [(who, mermaid.unescape(text).split(" ", 1)[1]) for who, text in diagram.notes]
    assert ("status", "status CONFIRMED → SHIPPING") in notes
    assert ("notifications", "email CONFIRMATION SENT") in notes
    assert ("shipping", "shipment DISPATCHED (DHL JD0146)") in notes


def test_the_svg_has_a_row_per_arrow_and_note_with_failures_marked() -> None:
    steps = shipped_order()
    root = ET.fromstring(svg(steps))  # noqa: S314 - our own output; well-formed: the error's <script> is text, not markup
    ns = {"s": "http://www.w3.org/2000/svg"}
    rows = root.findall("s:g", ns)
    lanes = [r for r in rows if "lane" in r.get("class", "")]
    drawn = [r for r in rows if r.get("class", "").startswith("row")]
    assert [r.find("s:text", ns).text for r in lanes] == list(sequence.LANES)  # type: ignore[union-attr]
    assert len(drawn) == len(sequence.rows(steps))
    failed = ["".join(r.itertext()) for r in drawn if "failed" in r.get("class", "").split()]
    assert len(failed) == 2 and "SES down; <script>" in failed[1]
    text = "".join(root.itertext())
    for word in ("OrderCreated", "InventoryReserved", "ShipmentRequested", "SHIPPING", "CONFIRMATION SENT"):
        assert word in text
