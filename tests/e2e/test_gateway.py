"""End-to-end: the local gateway answers hostile and odd requests as API Gateway does:
preflights from the template's CORS configuration, JSON errors in the contract's shape,
never a traceback or a dropped connection; keep-alive responses come in one piece."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.local_suite import LocalSuite

pytestmark = pytest.mark.db


def exchange(
    suite: LocalSuite, data: bytes, sock: socket.socket | None = None
) -> tuple[int, dict[str, str], bytes]:
    own = sock is None
    sock = sock or socket.create_connection(("127.0.0.1", suite.port), timeout=10)
    try:
        sock.sendall(data)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, f"connection dropped; got {raw!r}"
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            assert chunk, "connection dropped mid-body"
            body += chunk
        return int(lines[0].split()[1]), headers, body
    finally:
        if own:
            sock.close()


def assert_contract_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert set(error) == {"error", "requestId"} and {"code", "message"} <= set(error["error"]), error


def test_a_preflight_is_answered_from_the_templates_cors_configuration(suite: LocalSuite) -> None:
    status, headers, body = exchange(
        suite,
        b"OPTIONS /orders HTTP/1.1\r\nHost: x\r\nOrigin: http://shop.example\r\n"
        b"Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\n\r\n",
    )
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == "*"
    assert "POST" in headers["access-control-allow-methods"].split(",")
    assert "Idempotency-Key" in headers["access-control-allow-headers"].split(",")
    assert headers["access-control-max-age"] == "600"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"OPTIONS /orders HTTP/1.1\r\nHost: x\r\n\r\n", 404),  # not a preflight, no OPTIONS route
        (b"TRACE /orders HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"BREW /orders HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"DELETE /orders HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
        (b"GET /orders HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET /orders?" + b"a=1&" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GARBAGE\r\n\r\n", 400),
    ],
    ids=[
        "options",
        "trace",
        "unknown-method",
        "unknown-path",
        "unrouted-method",
        "cl-abc",
        "cl-negative",
        "big-header",
        "big-query",
        "garbage",
    ],
)
def test_what_no_route_takes_gets_a_json_error_never_a_dropped_connection(
    suite: LocalSuite, request_bytes: bytes, status: int
) -> None:
    assert_contract_error(*exchange(suite, request_bytes), expected=status)


def test_the_suite_logs_no_traceback_for_any_of_them(suite: LocalSuite) -> None:
    assert "Traceback" not in suite.log


def test_keep_alive_serves_many_requests_on_one_connection(suite: LocalSuite) -> None:
    request = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", suite.port), timeout=10) as sock:
        for _ in range(20):
            status, headers, body = exchange(suite, request, sock)
            assert status == 200 and json.loads(body)["keys"]
            assert headers.get("connection", "").lower() != "close"


@pytest.mark.parametrize(
    "sku", ["%F0%9F%98%80", "SKU-e%CC%81", "%E2%80%8B"], ids=["emoji", "combining", "zero-width"]
)
def test_a_non_ascii_path_parameter_reaches_the_function_and_is_422(suite: LocalSuite, sku: str) -> None:
    admin = suite.token("e2e-admin", admin=True)
    for method, path, body in (
        ("GET", f"/inventory/{sku}", None),
        ("PUT", f"/products/{sku}", {"name": "x"}),
    ):
        answer = suite.request(method, path, token=admin, body=body)
        assert answer.status == 422, (path, answer.body)
        assert answer.body["error"]["code"] == "VALIDATION_FAILED"
