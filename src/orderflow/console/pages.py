"""The console's HTML, rendered on the server (no template engine: a few small pages).

Every value from the database or a queue goes through ``escape``; the pages load one
stylesheet and one script from ``/console/static/`` and nothing else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

from orderflow.console.diagram import svg
from orderflow.ops.sequence import clock, groups, mermaid

STATUS_TONES = {
    "PENDING": "wait",
    "CONFIRMED": "go",
    "SHIPPING": "go",
    "SHIPPED": "go",
    "DELIVERED": "done",
    "CANCELLING": "wait",
    "CANCELLED": "stop",
    "REJECTED": "stop",
}


def document(title: str, live: str, *, refresh_ms: int, nav: str) -> str:
    """A whole page: ``live`` is the part the script refreshes in place."""
    links = "".join(
        f'<a href="{href}"{" class=here" if key == nav else ""}>{name}</a>'
        for key, href, name in (
            ("orders", "/console/", "Orders"),
            ("dlq", "/console/dlq", "Dead letters"),
            ("outbox", "/console/outbox", "Outbox"),
        )
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} · Orderflow console</title>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        '<link rel=stylesheet href="/console/static/console.css">'
        '<script src="/console/static/console.js" defer></script></head><body>'
        f"<header><strong>Orderflow</strong> console <nav>{links}</nav></header>"
        "<p id=flash role=status hidden></p>"
        f'<main id=live data-refresh="{refresh_ms}">{live}</main></body></html>'
    )


def _age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    s = max((now - at).total_seconds(), 0)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def _money(total: Any, currency: Any) -> str:
    """As the customer's email shows it (``1,234.50 USD``, ``1,200 JPY``): the one money type."""
    from common.money import Money, MoneyError

    try:
        return Money.of(total, str(currency)).display()
    except (MoneyError, TypeError, ValueError, ArithmeticError):
        return f"{total} {currency}"  # a row the money rules refuse is still shown, as stored


def _status(status: str | None) -> str:
    tone = STATUS_TONES.get(status or "", "wait")
    return f'<span class="badge {tone}">{escape(status or "-")}</span>'


def _button(label: str, path: str, body: dict[str, Any]) -> str:
    return (
        f'<button type=button data-post="{escape(path)}" data-body="{escape(json.dumps(body))}">'
        f"{escape(label)}</button>"
    )


def glance(outbox: list[dict[str, Any]], parked: int, dlqs: list[dict[str, Any]], now: datetime) -> str:
    unpublished = sum(int(r["unpublished"]) for r in outbox)
    oldest = max((float(r["oldest_age_s"] or 0) for r in outbox), default=0)
    tiles = [
        f'<a class="tile{" bad" if parked else ""}" href="/console/outbox"><b>{unpublished}</b> unpublished'
        f" · <b>{parked}</b> parked<small>outbox"
        + (f", oldest {oldest:.0f} s" if unpublished else "")
        + "</small></a>"
    ]
    for row in dlqs:
        name = row["function"].removesuffix("Function")
        tiles.append(
            f'<a class="tile{" bad" if row["depth"] else ""}" href="/console/dlq#{escape(row["function"])}">'
            f"<b>{row['depth']}</b> dead letters<small>{escape(name)}</small></a>"
        )
    return f'<section class=glance aria-label="at a glance">{"".join(tiles)}</section>'


def front(orders: list[dict[str, Any]], glance_html: str, now: datetime) -> str:
    body = [glance_html, "<h1>Latest orders</h1>"]
    if not orders:
        body.append("<p class=quiet>No order yet: place one (<code>orderflow demo</code>).</p>")
        return "".join(body)
    body.append(
        "<table class=orders><thead><tr><th>order</th><th>customer</th><th>status</th>"
        "<th class=num>total</th><th class=num>age</th></tr></thead><tbody>"
    )
    for o in orders:
        oid, placed = str(o["order_id"]), o["created_at"]
        body.append(
            f'<tr data-order="{oid}"><td><a href="/console/orders/{oid}" title="{oid}">'
            f"<code>{oid[:8]}</code></a>"
            f"</td><td>{escape(str(o['customer_id']))}</td><td>{_status(o['status'])}</td>"
            f"<td class=num>{escape(_money(o['total'], o['currency']))}</td>"
            f'<td class=num title="{escape(placed.isoformat())}">{_age(placed, now)}</td></tr>'
        )
    body.append("</tbody></table>")
    return "".join(body)


def order(order: dict[str, Any], steps: list[dict[str, Any]], note: str | None, now: datetime) -> str:
    oid = str(order["order_id"])
    out = [
        f"<h1>Order <code>{oid}</code></h1>",
        f"<p class=facts>{_status(order['status'])} customer <b>{escape(str(order['customer_id']))}</b>"
        f" · {escape(_money(order['total'], order['currency']))}"
        f" · placed {_age(order['created_at'], now)} ago · correlation <code>"
        f"{escape(str(order['correlation_id']))}</code></p>",
    ]
    letters = [s for s in steps if s["kind"] == "dead-letter"]
    if letters:
        out.append(
            f"<p class=alert>{len(letters)} dead letter(s) for this order: see"
            ' <a href="/console/dlq">Dead letters</a> to redrive.</p>'
        )
    if note:
        out.append(f"<p class=quiet>{escape(note)}</p>")
    out.append(f"<div class=diagram>{svg(steps)}</div>")
    out.append("<h2>Step by step</h2><table class=steps><tbody>")
    for title, members in groups(steps):
        out.append(f"<tr class=group><th colspan=3>{escape(title)}</th></tr>")
        for s in members:
            out.append(
                f'<tr class="{escape(s["kind"])}{" failed" if s.get("failed") else ""}">'
                f'<td><time datetime="{s["at"].astimezone(UTC).isoformat()}">{clock(s["at"])}</time></td>'
                f"<td>{escape(s['kind'])}</td><td>{escape(s['what'])}</td></tr>"
            )
    out.append(
        "</tbody></table>"
        f"<p class=quiet>The same in a terminal: <code>orderflow journey {oid}</code>. Times are UTC.</p>"
        "<details id=mermaid><summary>As Mermaid, for an issue or a pull request"
        f" (<code>orderflow journey {oid[:8]} --format mermaid</code>)</summary>"
        f"<pre>{escape(mermaid(steps))}</pre></details>"
    )
    return "".join(out)


def dlq(queues: list[tuple[dict[str, Any], list[Any]]], now: datetime) -> str:
    from orderflow.ops.dlq import _iso

    out = ["<h1>Dead-letter queues</h1>"]
    for row, letters in queues:
        fn = row["function"]
        path = f"/console/api/dlq/{fn}/redrive"
        out.append(
            f'<section class=queue id="{escape(fn)}"><h2>{escape(fn)} <small>{row["depth"]} message(s)'
        )
        out.append("</small>" + (_button("Redrive all", path, {}) if letters else "") + "</h2>")
        if not letters:
            out.append("<p class=quiet>Empty.</p></section>")
            continue
        out.append(
            "<table class=letters><thead><tr><th>message</th><th>event</th><th>order</th>"
            "<th>error</th><th></th></tr></thead><tbody>"
        )
        for letter in letters:
            event = letter.event or {}
            detail = event.get("detail") or {}
            order_id = str(detail.get("orderId") or "")
            order_cell = (
                f'<a href="/console/orders/{escape(order_id)}"><code>{escape(order_id[:8])}</code></a>'
                if order_id
                else "-"
            )
            out.append(
                f'<tr data-message="{escape(letter.message_id)}"><td><code>{escape(letter.message_id[:8])}'
                f"</code><br><small>{escape(_iso(letter.sent_at) or '-')} via {escape(letter.envelope)}"
                f", attempts {letter.attempts if letter.attempts is not None else '-'}</small></td>"
                f"<td><b>{escape(str(event.get('detail-type', '-')))}</b>"
                f"<br><small>{escape(str(event.get('source', '-')))}"
                f" · eventId {escape(str((detail.get('metadata') or {}).get('eventId', '-')))}</small>"
                f"<details><summary>event</summary><pre>{escape(json.dumps(event, indent=2))}</pre></details>"
                f"</td><td>{order_cell}</td><td class=error>{escape(letter.error or '-')}</td>"
                f"<td>{_button('Redrive', path, {'messageId': letter.message_id})}</td></tr>"
            )
        out.append("</tbody></table></section>")
    out.append(
        "<p class=quiet>Redrive does what <code>orderflow dlq redrive FUNCTION</code> does: it puts"
        " each message's event back to be delivered again, with its own eventId (a consumer that"
        " handled it already skips it), and deletes the message only once that was accepted.</p>"
    )
    return "".join(out)


def outbox(services: list[dict[str, Any]], parked: list[dict[str, Any]], now: datetime) -> str:
    out = ["<h1>Outbox</h1>"]
    if services:
        out.append(
            "<table class=backlog><thead><tr><th>service</th><th class=num>unpublished</th>"
            "<th class=num>parked</th><th class=num>oldest</th></tr></thead><tbody>"
        )
        for r in services:
            out.append(
                f"<tr><td>{escape(str(r['source']))}</td><td class=num>{r['unpublished']}</td>"
                f"<td class=num>{r['parked']}</td>"
                f"<td class=num>{float(r['oldest_age_s'] or 0):.0f} s</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append("<p class=quiet>Every row is published.</p>")
    out.append(
        "<h2>Parked rows"
        + (_button("Requeue all", "/console/api/outbox/requeue", {"all": True}) if parked else "")
    )
    out.append("</h2>")
    if not parked:
        out.append("<p class=quiet>None: the relay refused nothing for good.</p>")
    else:
        out.append(
            "<table class=parked><thead><tr><th>id</th><th>event</th><th>parked</th><th>reason</th><th></th>"
            "</tr></thead><tbody>"
        )
        for p in parked:
            out.append(
                f'<tr data-row="{p["id"]}"><td>{p["id"]}</td><td>{escape(str(p["source"]))}/'
                f"{escape(str(p['detail_type']))}</td><td>{_age(p['parked_at'], now)} ago</td>"
                f"<td class=error>{escape(str(p['parked_reason']))}</td>"
                f"<td>{_button('Requeue', '/console/api/outbox/requeue', {'ids': [p['id']]})}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append(
        "<p class=quiet>Requeue gives parked rows back to the relay, as"
        " <code>orderflow outbox requeue</code> does.</p>"
    )
    return "".join(out)


def not_found(what: str) -> str:
    return f"<h1>Not found</h1><p>{escape(what)}</p><p><a href=/console/>All orders</a></p>"
