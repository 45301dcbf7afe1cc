"""``orderflow demo``: seeds a catalog and stock, places orders against a running
local suite, and shows each order's journey until every order has settled; then
dispatches and delivers one, and cancels another (its stock given back)."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow import devauth

SETTLED = {"SHIPPING", "REJECTED"}
# The one forward path of an order (see docs/api.md): a status seen after another on it
# was reached through every status between them.
FORWARD = ("PENDING", "CONFIRMED", "SHIPPING", "SHIPPED", "DELIVERED")


def passed_through(last: str, now: str) -> list[str]:
    """The statuses from ``last`` (excluded) to ``now``: a poll can miss a quick step,
    which the order still took (it never skips one)."""
    if last in FORWARD and now in FORWARD and FORWARD.index(now) > FORWARD.index(last):
        return list(FORWARD[FORWARD.index(last) + 1 : FORWARD.index(now) + 1])
    return [now]


class DemoError(Exception):
    pass


def request(
    method: str, url: str, token: str | None = None, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback URLs we built
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass
class Journey:
    label: str
    customer: str
    email: str
    token: str
    items: list[dict[str, Any]]
    order_id: str | None = None
    status: str = "-"
    reason: str | None = None
    email_subject: str | None = None
    history: list[str] = field(default_factory=list)


def _shipment(journey: Journey) -> str:
    if journey.status == "SHIPPING":
        return "shipment requested"
    if journey.status == "REJECTED":
        return f"no shipment: {journey.reason or ''}"
    return "…"


def emails_by_recipient(aws: str) -> dict[str, list[str]]:
    with urllib.request.urlopen(f"{aws}/moto-api/data.json", timeout=10) as resp:  # noqa: S310
        data = json.loads(resp.read())
    found: dict[str, list[str]] = {}
    for message in data.get("ses", {}).get("Message", []):
        for address in message.get("destinations", {}).get("ToAddresses", []):
            found.setdefault(address, []).append(message.get("subject", ""))
    return found


def run(
    state_dir: Path,
    api: str | None = None,
    aws: str | None = None,
    timeout_s: float = 60,
    out: Any = sys.stdout,
) -> int:
    state_file = state_dir / "local.json"
    if api is None or aws is None:
        if not state_file.exists():
            raise DemoError("no running suite found: start it with `./dev run` (orderflow local) first")
        state = json.loads(state_file.read_text())
        api, aws = api or state["api"], aws or state["aws"]
    run_id = uuid.uuid4().hex[:6].upper()
    admin = devauth.token(state_dir, sub="demo-admin", admin=True)

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    catalog = {
        f"DEMO-{run_id}-MUG": ("Orderflow mug", "12.50", 100),
        f"DEMO-{run_id}-LAMP": ("Desk lamp", "39.90", 3),
        f"DEMO-{run_id}-BOOK": ("Serverless patterns", "24.00", 10),
    }
    say(f"Seeding {len(catalog)} products and their stock (run {run_id}) on {api}")
    for sku, (name, price, stock) in catalog.items():
        seed: tuple[tuple[str, dict[str, Any]], ...] = (
            (f"/products/{sku}", {"name": name, "unitPrice": price, "currency": "USD"}),
            (f"/inventory/{sku}", {"onHand": stock}),
        )
        for path, payload in seed:
            status, answer = request("PUT", api + path, admin, payload)
            if status != 200:
                raise DemoError(f"PUT {path} answered {status}: {answer}")
    mug, lamp, book = catalog
    journeys = [
        Journey(
            "mug and book",
            "ada",
            "ada@example.com",
            "",
            [{"sku": mug, "quantity": 2}, {"sku": book, "quantity": 1}],
        ),
        Journey("one lamp", "grace", "grace@example.com", "", [{"sku": lamp, "quantity": 1}]),
        Journey("two lamps", "alan", "alan@example.com", "", [{"sku": lamp, "quantity": 2}]),
        Journey("too many lamps", "edsger", "edsger@example.com", "", [{"sku": lamp, "quantity": 5}]),
    ]
    address: dict[str, str | None] = {
        "name": "",
        "line1": "1 Main St",
        "line2": None,
        "city": "London",
        "postalCode": "N1 9GU",
        "country": "GB",
    }
    started = time.monotonic()
    for j in journeys:
        j.token = devauth.token(state_dir, sub=f"demo-{j.customer}-{run_id}", email=j.email)
        body: dict[str, Any] = {"items": j.items, "shippingAddress": {**address, "name": j.customer.title()}}
        status, answer = request(
            "POST", f"{api}/orders", j.token, body, {"X-Correlation-Id": f"demo-{run_id}-{j.customer}"}
        )
        if status != 201:
            raise DemoError(f"POST /orders answered {status}: {answer}")
        j.order_id, j.status = answer["orderId"], answer["status"]
        j.history.append(j.status)
        say(f"  placed {j.label:<15} order {j.order_id[:8]}  total {answer['total']} USD")

    say("Following each order (status · confirmation email · shipment):")
    interactive = out.isatty()
    lines_drawn = 0
    while True:
        emails = emails_by_recipient(aws)
        for j in journeys:
            status, answer = request("GET", f"{api}/orders/{j.order_id}", j.token)
            if status == 200:
                j.status, j.reason = answer["status"], answer.get("rejectionReason")
                if j.history[-1] != j.status:
                    j.history.extend(passed_through(j.history[-1], j.status))
            subjects = [s for s in emails.get(j.email, []) if (j.order_id or "")[:8] in s]
            j.email_subject = subjects[0] if subjects else None
        done = all(j.status in SETTLED for j in journeys) and all(j.email_subject for j in journeys)
        elapsed = time.monotonic() - started
        rows = [
            f"  {j.label:<15} {j.order_id[:8] if j.order_id else '':<9} "
            f"{' → '.join(j.history):<32} "
            f"{'✉ ' + j.email_subject if j.email_subject else '✉ …':<50} "
            f"{_shipment(j)}"
            for j in journeys
        ]
        rows.append(
            f"  [{'#' * sum(j.status in SETTLED for j in journeys):<{len(journeys)}}] "
            f"{sum(j.status in SETTLED for j in journeys)}/{len(journeys)} settled  {elapsed:4.1f} s"
        )
        if interactive and lines_drawn:
            print(f"\x1b[{lines_drawn}F\x1b[J", end="", file=out)
        if interactive or done or elapsed > timeout_s:
            print("\n".join(rows), file=out, flush=True)
            lines_drawn = len(rows)
        if done or elapsed > timeout_s:
            break
        time.sleep(0.3)

    shipped = sum(j.status == "SHIPPING" for j in journeys)
    rejected = sum(j.status == "REJECTED" for j in journeys)
    pending = len(journeys) - shipped - rejected
    say(
        f"Summary: {len(journeys)} orders, {shipped} shipping, {rejected} rejected, "
        f"{sum(bool(j.email_subject) for j in journeys)} confirmation emails, "
        f"{time.monotonic() - started:.1f} s"
    )
    if pending or not all(j.email_subject for j in journeys):
        say(f"Not settled after {timeout_s:.0f} s: see the suite's log for the failing function")
        return 1
    delivered = _dispatch_and_deliver(journeys[0], api, admin, started, timeout_s, say)
    if delivered:
        return delivered
    cancelled = _cancel(journeys[1], lamp, api, aws, admin, started, timeout_s, say)
    if not cancelled:
        first = (journeys[0].order_id or "")[:8]
        say(f"Each order's journey, drawn as it happened: {api}/console/orders/{first} (all: {api}/console/)")
        say(f"or in the terminal: orderflow journey {first}  (--format mermaid for a diagram)")
    return cancelled


def _dispatch_and_deliver(
    j: Journey, api: str, admin: str, started: float, timeout_s: float, say: Any
) -> int:
    """The warehouse's part (an admin): the first order leaves, then arrives."""
    tracking = f"DEMO-{(j.order_id or '')[:8].upper()}"
    steps = (
        ("dispatch", {"carrier": "DemoPost", "trackingNumber": tracking}, "SHIPPED"),
        ("deliver", None, "DELIVERED"),
    )
    for action, payload, expected in steps:
        status, answer = request("POST", f"{api}/shipments/{j.order_id}/{action}", admin, payload)
        if status != 200:
            raise DemoError(f"POST /shipments/{j.order_id}/{action} answered {status}: {answer}")
        while j.status != expected:
            if time.monotonic() - started > timeout_s:
                say(
                    f"Order {(j.order_id or '')[:8]} not {expected} after {timeout_s:.0f} s: "
                    "see the suite's log"
                )
                return 1
            time.sleep(0.3)
            status, answer = request("GET", f"{api}/orders/{j.order_id}", j.token)
            if status == 200 and answer["status"] != j.history[-1]:
                j.status = answer["status"]
                j.history.append(j.status)
    say(f"  {j.label:<15} {(j.order_id or '')[:8]:<9} {' → '.join(j.history)}  (DemoPost {tracking})")
    say("Summary: 1 order dispatched and delivered")
    return 0


def _cancel(
    j: Journey, sku: str, api: str, aws: str, admin: str, started: float, timeout_s: float, say: Any
) -> int:
    """The customer's change of mind: the order is cancelled before it leaves, its
    reservation goes back to the stock, and one cancellation email follows."""
    status, before = request("GET", f"{api}/inventory/{sku}", admin)
    if status != 200:
        raise DemoError(f"GET /inventory/{sku} answered {status}: {before}")
    status, answer = request(
        "POST", f"{api}/orders/{j.order_id}/cancel", j.token, {"reason": "Changed my mind"}
    )
    if status != 202:
        raise DemoError(f"POST /orders/{j.order_id}/cancel answered {status}: {answer}")
    number = (j.order_id or "")[:8]
    while True:
        status, answer = request("GET", f"{api}/orders/{j.order_id}", j.token)
        if status == 200 and answer["status"] != j.history[-1]:
            j.status = answer["status"]
            j.history.append(j.status)
        _, after = request("GET", f"{api}/inventory/{sku}", admin)
        subjects = [s for s in emails_by_recipient(aws).get(j.email, []) if number in s and "cancelled" in s]
        if j.status == "CANCELLED" and after.get("reserved", -1) < before["reserved"] and subjects:
            break
        if time.monotonic() - started > timeout_s:
            say(f"Order {number} not CANCELLED after {timeout_s:.0f} s: see the suite's log")
            return 1
        time.sleep(0.3)
    say(f"  {j.label:<15} {number:<9} {' → '.join(j.history)}  (✉ {subjects[0]})")
    say(
        f"  {sku}: reserved {before['reserved']} → {after['reserved']}, "
        f"available {before['available']} → {after['available']}"
    )
    say("Summary: 1 order cancelled, its stock given back")
    return 0
