"""The local gateway applies the template's CORS configuration with ``CorsAllowOrigin``'s
value, as API Gateway does: preflights, and the CORS headers of every response to a
request from an origin (replacing the function's own)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from orderflow import gateway
from orderflow import template as tpl
from tests.support.local_suite import free_ports

SHOP = "https://shop.example"


@pytest.fixture
def api() -> Iterator[int]:
    doc = tpl.load()

    def invoke(function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        # What an HTTP function answers: its own CORS header (CORS_ALLOW_ORIGIN's value).
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json", "Access-Control-Allow-Origin": SHOP},
            "body": "{}",
        }

    (port,) = free_ports(1)
    server = gateway.Gateway(
        port, gateway.routes(tpl.functions()), invoke, gateway.cors_of(doc, {"CorsAllowOrigin": SHOP})
    )
    server.serve_in_background()
    yield port
    server.shutdown()
    server.server_close()


def request(port: int, method: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, "/orders", headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_the_configuration_takes_the_parameters_value() -> None:
    assert gateway.cors_of(tpl.load())["AllowOrigins"] == ["*"]  # the parameter's default
    assert gateway.cors_of(tpl.load(), {"CorsAllowOrigin": SHOP})["AllowOrigins"] == [SHOP]


def test_a_preflight_from_the_allowed_origin_is_answered_for_it(api: int) -> None:
    answer = request(api, "OPTIONS", {"Origin": SHOP, "Access-Control-Request-Method": "POST"})
    assert answer.status == 204
    assert answer.getheader("Access-Control-Allow-Origin") == SHOP


def test_a_preflight_from_another_origin_gets_no_cors_headers(api: int) -> None:
    answer = request(
        api, "OPTIONS", {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert answer.status == 204
    assert answer.getheader("Access-Control-Allow-Origin") is None


def test_a_response_to_the_allowed_origin_names_it(api: int) -> None:
    answer = request(api, "GET", {"Origin": SHOP})
    assert answer.getheader("Access-Control-Allow-Origin") == SHOP
    assert answer.getheader("Access-Control-Expose-Headers") == "Location,X-Correlation-Id"


def test_a_response_to_another_origin_carries_no_cors_header(api: int) -> None:
    answer = request(api, "GET", {"Origin": "https://evil.example"})
    assert answer.status == 200
    assert answer.getheader("Access-Control-Allow-Origin") is None


def test_without_an_origin_the_functions_header_passes(api: int) -> None:
    assert request(api, "GET", {}).getheader("Access-Control-Allow-Origin") == SHOP
