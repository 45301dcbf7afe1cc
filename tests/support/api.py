"""Calls an HTTP function's handler with real API Gateway HTTP API v2 events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderflow.lambda_runtime import LambdaContext, http_api_event


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]


@dataclass
class HttpClient:
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    token: str | None = None

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        query: str = "",
        token: str | bool | None = True,
    ) -> HttpResult:
        all_headers = {"content-type": "application/json", **(headers or {})}
        bearer = self.token if token is True else token
        if bearer:
            all_headers["authorization"] = f"Bearer {bearer}"
        if json_body is not None:
            body = json.dumps(json_body)
        event = http_api_event(method, path, body=body, headers=all_headers, query=query)
        result = self.handler(event, LambdaContext(function_name="OrdersApiFunction"))
        text = result.get("body") or ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        headers_out = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        return HttpResult(result["statusCode"], headers_out, parsed, result)

    def post(self, path: str, payload: Any = None, **kw: Any) -> HttpResult:
        return self.call("POST", path, json_body=payload, **kw)

    def get(self, path: str, **kw: Any) -> HttpResult:
        return self.call("GET", path, **kw)

    def put(self, path: str, payload: Any = None, **kw: Any) -> HttpResult:
        return self.call("PUT", path, json_body=payload, **kw)
