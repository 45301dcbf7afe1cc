"""The console's own answers, called as the gateway calls it, where no suite is needed:
the database and the emulator unreachable (real refused connections), and requests
that are not the console's own."""

from __future__ import annotations

from typing import Any

from orderflow.console.app import Console
from orderflow.ops.target import Target
from tests.support.local_suite import free_ports

CLOSED_DB, CLOSED_AWS, PORT = free_ports(3)  # nothing listens on them


def console() -> Console:
    return Console(
        f"postgresql+pg8000://nobody@127.0.0.1:{CLOSED_DB}/orderflow",
        Target(endpoint=f"http://127.0.0.1:{CLOSED_AWS}", bus="orderflow-local"),
        PORT,
    )


def call(method: str, path: str, query: str = "", body: bytes | None = None, **headers: str) -> Any:
    sent = {"Host": f"127.0.0.1:{PORT}", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return console()(method, path, query, sent, body)


def test_a_page_says_in_one_line_that_the_suite_cannot_be_read() -> None:
    status, headers, body = call("GET", "/console/")
    assert status == 503 and headers["Content-Type"].startswith("text/html")
    assert b"the console could not read the suite: " in body and b"Traceback" not in body
    status, _, partial = call("GET", "/console/", "partial=1")
    assert status == 503 and partial.startswith(b"<h1>Unavailable</h1>")  # the live part only


def test_an_action_says_so_as_json() -> None:
    status, headers, body = call(
        "POST",
        "/console/api/outbox/requeue",
        body=b'{"all": true}',
        Content_Type="application/json",
        X_Orderflow_Console="1",
    )
    assert status == 503 and headers["Content-Type"] == "application/json"
    assert b"could not read the suite" in body


def test_requests_that_are_not_the_consoles_own_are_refused_before_anything_is_read() -> None:
    assert call("GET", "/console/", Host="attacker.example")[0] == 421
    assert call("POST", "/console/api/outbox/requeue", body=b"{}", Content_Type="application/json")[0] == 403
    assert call("DELETE", "/console/")[0] == 405
    assert call("GET", "/console/static/../app.py")[0] == 404
    status, headers, _ = call("GET", "/console/static/console.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
