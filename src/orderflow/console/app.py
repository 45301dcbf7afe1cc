"""The local console: ``/console/`` on the local suite's API port, loopback only, never
deployed (template.yaml knows nothing of it).

It reads what ``orderflow journey``, ``dlq`` and ``outbox`` read, through their own
functions, and its two operator actions are theirs: redrive a dead letter (one, or a
queue's all) and requeue parked outbox rows. Pages are rendered on the server; a small
script refreshes each page's live part and sends the actions.

The actions are guarded against other web pages in the same browser: a request must
name this server by its loopback address (``Host``: no DNS rebinding), carry the
console's own header (``X-Orderflow-Console``, which a cross-site form cannot set, and a
cross-site script cannot without a preflight that the console refuses), and any
``Origin`` or ``Sec-Fetch-Site`` it carries must say it came from the console itself.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

from orderflow.console import pages
from orderflow.ops.target import CONSUMERS, OpsError, Target

PREFIX = "/console"
ACTION_HEADER = "x-orderflow-console"
LATEST = 50
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    # Inline SVG is markup, not script or style: 'self' covers every page.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ORDER_PAGE = re.compile(r"^/console/orders/([^/]+)$")
ORDER_JSON = re.compile(r"^/console/api/orders/([^/]+)$")
REDRIVE = re.compile(r"^/console/api/dlq/([A-Za-z]+)/redrive$")

Reply = tuple[int, dict[str, str], bytes]


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Console:
    database_url: str
    target: Target
    port: int
    _engine: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # One DLQ operation at a time: a page's look (which hides messages for a moment)
    # must not hide them from a redrive running beside it.
    _queues: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ plumbing
    def engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                from sqlalchemy import create_engine

                self._engine = create_engine(
                    self.database_url, pool_size=2, max_overflow=2, pool_pre_ping=True, hide_parameters=True
                )
                # boto3 builds clients from one shared session: not from several threads at once.
                self.target.client("sqs")
                self.target.client("events")
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def __call__(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes | None
    ) -> Reply:
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            self._check_host(headers)
            if method == "POST":
                self._check_action(headers)
                return self._json(200, self._act(path, _json_body(body)))
            if method not in ("GET", "HEAD"):
                raise Refused(405, f"{method} is not served here")
            return self._get(path, query)
        except Refused as exc:
            return self._json(exc.status, {"error": str(exc)})
        except OpsError as exc:
            return self._json(409, {"error": str(exc)})
        except Exception as exc:  # the database or the emulator away: say so, in one line
            from orderflow.errors import one_line

            reason = f"the console could not read the suite: {one_line(exc)}"
            if method == "POST" or "/api/" in path:
                return self._json(503, {"error": reason})
            inner = f"<h1>Unavailable</h1><p class=alert>{escape(reason)}</p>"
            partial = "partial=1" in query.split("&")
            return self._html(
                503, inner if partial else pages.document("Unavailable", inner, refresh_ms=3000, nav="")
            )

    def _check_host(self, headers: dict[str, str]) -> None:
        if headers.get("host") not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            raise Refused(421, f"the console answers only as 127.0.0.1:{self.port} or localhost:{self.port}")

    def _check_action(self, headers: dict[str, str]) -> None:
        if headers.get(ACTION_HEADER) != "1":
            raise Refused(403, "an action needs the console's own header: use the console's buttons")
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{headers['host']}":
            raise Refused(403, f"an action from another site ({origin}) is refused")
        if headers.get("sec-fetch-site", "same-origin") != "same-origin":
            raise Refused(403, "an action from another site is refused")
        if not headers.get("content-type", "").startswith("application/json"):
            raise Refused(415, "an action's body is JSON")

    def _html(self, status: int, html: str) -> Reply:
        return status, {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS}, html.encode()

    def _json(self, status: int, payload: Any) -> Reply:
        raw = json.dumps(payload, default=_plain).encode()
        return status, {"Content-Type": "application/json", **SECURITY_HEADERS}, raw

    # ------------------------------------------------------------------ pages
    def _get(self, path: str, query: str) -> Reply:
        if path == PREFIX:
            return 308, {"Location": f"{PREFIX}/", **SECURITY_HEADERS}, b""
        if path.startswith(f"{PREFIX}/static/"):
            return self._static(path.removeprefix(f"{PREFIX}/static/"))
        if path == f"{PREFIX}/api/orders":
            return self._json(200, {"orders": self.latest_orders()})
        if match := ORDER_JSON.match(path):
            try:
                order, steps, note = self.journey(match.group(1))
            except OpsError as exc:
                raise Refused(404, str(exc)) from None
            return self._json(200, {"order": order, "steps": steps, "note": note})
        partial = "partial=1" in query.split("&")
        now = datetime.now(UTC)
        if path == f"{PREFIX}/":
            live = pages.front(self.latest_orders(), self.glance(now), now)
            return self._page("Orders", live, partial, refresh_ms=2000, nav="orders")
        if match := ORDER_PAGE.match(path):
            try:
                order, steps, note = self.journey(match.group(1))
            except OpsError as exc:
                return self._html(
                    404, pages.document("Not found", pages.not_found(str(exc)), refresh_ms=0, nav="")
                )
            return self._page(
                f"Order {order['order_id']}",
                pages.order(order, steps, note, now),
                partial,
                refresh_ms=1500,
                nav="orders",
            )
        if path == f"{PREFIX}/dlq":
            return self._page(
                "Dead letters", pages.dlq(self.dead_letters(), now), partial, refresh_ms=4000, nav="dlq"
            )
        if path == f"{PREFIX}/outbox":
            services, parked = self.outbox()
            return self._page(
                "Outbox", pages.outbox(services, parked, now), partial, refresh_ms=3000, nav="outbox"
            )
        return self._html(
            404, pages.document("Not found", pages.not_found(f"no page {path}"), refresh_ms=0, nav="")
        )

    def _page(self, title: str, live: str, partial: bool, *, refresh_ms: int, nav: str) -> Reply:
        return self._html(
            200, live if partial else pages.document(title, live, refresh_ms=refresh_ms, nav=nav)
        )

    def _static(self, name: str) -> Reply:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or suffix not in STATIC_TYPES:
            raise Refused(404, f"no file {name}")
        try:
            raw = resources.files("orderflow.console").joinpath("static", name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise Refused(404, f"no file {name}") from None
        return 200, {"Content-Type": STATIC_TYPES[suffix], **SECURITY_HEADERS}, raw

    # ------------------------------------------------------------------ data
    def latest_orders(self) -> list[dict[str, Any]]:
        from sqlalchemy import text

        with self.engine().connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT order_id, customer_id, status, total, currency, created_at, updated_at"
                    " FROM orders.orders ORDER BY created_at DESC, order_id LIMIT :n"
                ),
                {"n": LATEST},
            ).mappings()
            return [dict(r) for r in rows]

    def glance(self, now: datetime) -> str:
        from common.outbox.admin import health_by_source
        from orderflow.ops.dlq import depth

        with self.engine().connect() as conn:
            services = health_by_source(conn)
        parked = sum(int(r["parked"]) for r in services)
        with self._queues:
            dlqs = [{"function": f, "depth": depth(self.target, self.target.dlq_url(f))} for f in CONSUMERS]
        return pages.glance(services, parked, dlqs, now)

    def journey(self, given: str) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
        """What ``orderflow journey`` shows for an order id (or a unique prefix of one):
        the order now, its steps in order, a note when the dead-letter queues could not
        be read."""
        from orderflow.ops import journey

        with self.engine().connect() as conn:
            order, steps = journey.load(conn, journey.order_id_in(conn, given))
        order_id = order["order_id"]
        note = None
        try:
            with self._queues:
                steps += journey.dead_letters_in(self.target, order_id)
        except Exception as exc:  # the journey is still worth showing without the queues
            from orderflow.errors import one_line

            note = f"dead-letter queues not read: {one_line(exc)}"
        return order, journey.in_order(steps), note

    def dead_letters(self) -> list[tuple[dict[str, Any], list[Any]]]:
        from orderflow.ops.dlq import depth, peek

        found = []
        with self._queues:
            for function_id in CONSUMERS:
                url = self.target.dlq_url(function_id)
                count = depth(self.target, url)
                letters = peek(self.target, url, visibility_s=2) if count else []
                found.append(({"function": function_id, "depth": count}, letters))
        return found

    def outbox(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from common.outbox.admin import health_by_source, parked_rows

        with self.engine().connect() as conn:
            return health_by_source(conn), parked_rows(conn)

    # ------------------------------------------------------------------ actions
    def _act(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if match := REDRIVE.match(path):
            return self.redrive(match.group(1), body.get("messageId"))
        if path == f"{PREFIX}/api/outbox/requeue":
            return self.requeue(body)
        raise Refused(404, f"no action {path}")

    def redrive(self, function_id: str, message_id: Any) -> dict[str, Any]:
        """``orderflow dlq redrive FUNCTION``, for one message or the whole queue."""
        from orderflow.ops.dlq import redrive

        if function_id not in CONSUMERS:
            raise Refused(404, f"{function_id} is not a consumer with a dead-letter queue")
        if message_id is not None and not isinstance(message_id, str):
            raise Refused(400, "messageId is a string")
        self.engine()  # the clients, built once
        with self._queues:
            done = redrive(self.target, function_id, message_ids={message_id} if message_id else None)
        if message_id and not done:
            raise Refused(404, f"message {message_id} is no longer in {function_id}'s dead-letter queue")
        return {
            "redriven": [letter.message_id for letter in done],
            "message": f"{function_id}: put back {len(done)} event(s)",
        }

    def requeue(self, body: dict[str, Any]) -> dict[str, Any]:
        """``orderflow outbox requeue``: some parked rows, or all."""
        from common.outbox.admin import requeue_parked

        ids = body.get("ids")
        if body.get("all") is True:
            ids = None
        elif not (isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids)):
            raise Refused(400, 'name the rows to requeue ({"ids": [1, 2]}) or {"all": true}')
        with self.engine().begin() as conn:
            done = requeue_parked(conn, ids)
        return {"requeued": done, "message": f"requeued {len(done)} row(s)"}


def _json_body(body: bytes | None) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise Refused(400, "the body is a JSON object")
    return parsed


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)
