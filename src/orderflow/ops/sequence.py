"""One order's journey as a sequence diagram: one lane per service, an arrow per event
from the service that wrote it to the bus and from the bus to each consumer that handled
it, notes for what changed (the order's status, an email, the shipment), failures and
dead letters marked.

The rows are drawn twice from the same list: as Mermaid (``orderflow journey --format
mermaid``) and as SVG (the local console). Steps come from ``orderflow.ops.journey``, in
time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orderflow.ops.journey import API_LANE, BUS_LANE

LANES = (API_LANE, BUS_LANE, "inventory", "notifications", "shipping", "order status")
MERMAID_IDS = {
    API_LANE: "api",
    BUS_LANE: "bus",
    "inventory": "inventory",
    "notifications": "notifications",
    "shipping": "shipping",
    "order status": "status",
}


# The HTTP request that wrote an event no consumer caused, by that event.
REQUESTS = {
    "OrderCreated": "POST /orders",
    "OrderCancellationRequested": "POST /orders/{id}/cancel",
    "ShipmentDispatched": "POST /shipments/{id}/dispatch (admin)",
    "ShipmentDelivered": "POST /shipments/{id}/deliver (admin)",
}


@dataclass(frozen=True)
class Row:
    """An arrow (``source`` to ``target``) or, when ``target`` is None, a note on ``source``."""

    at: datetime
    source: str
    target: str | None
    label: str
    remark: str = ""  # a second, quieter line: when it was published, why it failed
    tone: str = "event"  # event, order, status, email, shipment, failure
    failed: bool = False


def rows(steps: list[dict[str, Any]]) -> list[Row]:
    published = {s["eventId"]: s for s in steps if s["kind"] in ("published", "parked")}
    drawn: list[Row] = []
    for step in steps:
        kind, at, lane = step["kind"], step["at"], step.get("lane") or API_LANE
        if kind == "order":
            drawn.append(Row(at, API_LANE, None, "order placed", "status PENDING", tone="order"))
        elif kind == "event":
            outcome = published.get(step["eventId"])
            if outcome is None:
                remark, failed = "not published yet", False
            elif outcome["kind"] == "parked":
                remark, failed = outcome["what"].split(": ", 1)[-1], True
            else:
                remark, failed = f"published {_delay(at, outcome['at'])}", False
            drawn.append(
                Row(
                    at,
                    lane,
                    BUS_LANE,
                    step["detailType"],
                    remark,
                    tone="failure" if failed else "event",
                    failed=failed,
                )
            )
        elif kind == "consumed":
            drawn.append(Row(at, BUS_LANE, lane, step["detailType"]))
        elif kind == "dead-letter":
            error = step["what"].split(": ", 1)[-1]
            drawn.append(
                Row(
                    at,
                    BUS_LANE,
                    lane,
                    f"{step['detailType']} dead-lettered",
                    error,
                    tone="failure",
                    failed=True,
                )
            )
        elif kind == "status":
            drawn.append(Row(at, lane, None, step["what"], tone="status"))
        elif kind == "email":
            drawn.append(Row(at, lane, None, step["what"], tone="email"))
        elif kind == "shipment":
            text = step["what"].split(" ", 2)[-1]  # "shipment <id> DISPATCHED (...)" -> "DISPATCHED (...)"
            drawn.append(Row(at, lane, None, f"shipment {text}", tone="shipment"))
    return drawn


def _delay(written: datetime, published: datetime) -> str:
    ms = (published - written).total_seconds() * 1000
    return f"after {ms:.0f} ms" if ms < 10_000 else f"after {ms / 1000:.0f} s"


def clock(at: datetime) -> str:
    """A row's time of day, UTC, to the millisecond."""
    return at.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def groups(steps: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The steps by service step (one consumer on one event, one request), in the order
    each group began; a group's title names its service and what it acted on."""
    found: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        found.setdefault(step.get("group") or step["kind"], []).append(step)
    titled = []
    for members in found.values():
        lane = members[0].get("lane") or API_LANE
        handled = next((m for m in members if m["kind"] in ("consumed", "dead-letter")), None)
        request = next((REQUESTS[m["detailType"]] for m in members if m.get("detailType") in REQUESTS), None)
        if handled is not None:
            title = f"{lane}, on {handled['detailType']}"
        elif request is not None:
            title = f"{lane}, {request}"
        else:
            title = f"{lane}, an HTTP request"
        titled.append((title, members))
    return titled


def mermaid(steps: list[dict[str, Any]]) -> str:
    """The diagram in Mermaid's sequenceDiagram syntax, one line per row."""
    lines = ["sequenceDiagram"]
    lines += [f"    participant {MERMAID_IDS[lane]} as {lane}" for lane in LANES]
    for row in rows(steps):
        text = _mermaid_text(f"{clock(row.at)} {row.label}" + (f" ({row.remark})" if row.remark else ""))
        if row.target is None:
            line = f"Note over {MERMAID_IDS[row.source]}: {text}"
        else:
            arrow = "-x" if row.failed else "->>"
            line = f"{MERMAID_IDS[row.source]}{arrow}{MERMAID_IDS[row.target]}: {text}"
        if row.failed:  # a red band behind a failure
            lines += ["    rect rgb(255, 221, 221)", f"        {line}", "    end"]
        else:
            lines.append(f"    {line}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    """Message text Mermaid takes literally: ``;`` and ``#`` start its own syntax
    (a statement break, an entity), so they are written as entity codes."""
    return "".join(_MERMAID_CODES.get(c, c) for c in " ".join(text.split()))


_MERMAID_CODES = {"#": "#35;", ";": "#59;"}
