"""The local HTTP API: turns each request into an API Gateway HTTP API (payload 2.0)
event for the function whose route matches in template.yaml, and its result back
into the HTTP response, as API Gateway does."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from orderflow import template as tpl
from orderflow.lambda_runtime import http_api_event

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's own limit; the functions enforce theirs
Invoker = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the template: /orders/{orderId}
    function_id: str
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, method: str, path: str, function_id: str) -> Route:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        return cls(method.upper(), path, function_id, re.compile(f"^{regex}$"))


def routes(functions: dict[str, tpl.Function]) -> list[Route]:
    found = []
    for fn in functions.values():
        for event in fn.events.values():
            if event.get("Type") == "HttpApi":
                props = event["Properties"]
                found.append(Route.of(props.get("Method", "ANY"), props["Path"], fn.logical_id))
    # Literal paths before parameterised ones, as API Gateway prefers the most specific.
    return sorted(found, key=lambda r: (r.path.count("{"), -len(r.path)))


def cors_of(doc: dict[str, Any]) -> dict[str, Any]:
    for resource in doc["Resources"].values():
        if resource["Type"] == "AWS::Serverless::HttpApi":
            return dict(resource["Properties"].get("CorsConfiguration", {}))
    return {}


class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: 16 clients connecting at once saw resets.
    request_queue_size = 128

    def __init__(
        self,
        port: int,
        route_table: list[Route],
        invoke: Invoker,
        cors: dict[str, Any],
        extra_get: dict[str, Callable[[], Any]] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.route_table = route_table
        self.invoke = invoke
        self.cors = cors
        self.extra_get = extra_get or {}
        super().__init__((host, port), _Handler)

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # the functions log each request
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def do_OPTIONS(self) -> None:
        cors = self.server.cors
        if not cors:
            self._dispatch()
            return
        headers = {
            "Access-Control-Allow-Origin": ",".join(cors.get("AllowOrigins", ["*"])),
            "Access-Control-Allow-Methods": ",".join(cors.get("AllowMethods", ["*"])),
            "Access-Control-Allow-Headers": ",".join(cors.get("AllowHeaders", ["*"])),
            "Access-Control-Max-Age": str(cors.get("MaxAge", 0)),
        }
        self._send(204, headers, b"")

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD:
            self._send_json(413, {"message": "Request Entity Too Large"})
            return
        body = self.rfile.read(length) if length else None
        if self.command == "GET" and path in self.server.extra_get:
            self._send_json(200, self.server.extra_get[path]())
            return
        for route in self.server.route_table:
            match = route.pattern.match(path)
            if match and route.method in (self.command, "ANY"):
                break
        else:
            self._send_json(404, {"message": "Not Found"})
            return
        text: str | bytes | None = None
        if body is not None:
            try:
                text = body.decode()
            except UnicodeDecodeError:
                text = body  # http_api_event base64-encodes bytes, as API Gateway does
        event = http_api_event(
            self.command,
            path,
            body=text,
            headers=dict(self.headers.items()),
            query=url.query,
            route_key=f"{route.method} {route.path}",
            path_parameters=match.groupdict() or None,
            source_ip=self.client_address[0],
        )
        try:
            result = self.server.invoke(route.function_id, event)
        except Exception:
            self._send_json(500, {"message": "Internal Server Error"})
            return
        self._send_result(result)

    def _send_result(self, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # A bare return value: API Gateway answers 200 with it as JSON.
            self._send_json(200, result)
            return
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        self._send(int(result["statusCode"]), headers, raw, cookies=result.get("cookies") or [])

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

    def _send(self, status: int, headers: dict[str, str], body: bytes, cookies: list[str] = ()) -> None:  # type: ignore[assignment]
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
