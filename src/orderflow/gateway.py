"""The local HTTP API: turns each request into an API Gateway HTTP API (payload 2.0)
event for the function whose route matches in template.yaml, and its result back
into the HTTP response, as API Gateway does."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from orderflow import template as tpl
from orderflow.lambda_runtime import http_api_event

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's own limit; the functions enforce theirs
Invoker = Callable[[str, dict[str, Any]], Any]
# A local web app under a path prefix (the console): (method, path, query, headers, body)
# to (status, headers, body). Not API Gateway's: nothing of it is deployed.
Mount = Callable[[str, str, str, dict[str, str], bytes | None], tuple[int, dict[str, str], bytes]]


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


def cors_of(doc: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The HTTP API's CORS configuration, ``!Ref`` to a parameter resolved to the value given
    in ``parameters``, else to its default (as the functions' ``CORS_ALLOW_ORIGIN`` is)."""
    defaults = {name: p.get("Default") for name, p in (doc.get("Parameters") or {}).items()}
    defaults.update(parameters or {})

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return defaults.get(value["Ref"], "")
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    for resource in doc["Resources"].values():
        if resource["Type"] == "AWS::Serverless::HttpApi":
            return {k: resolve(v) for k, v in resource["Properties"].get("CorsConfiguration", {}).items()}
    return {}


def error_body(status: int, code: str, message: str) -> bytes:
    """The contract's error shape, for what the gateway itself refuses."""
    return json.dumps({"error": {"code": code, "message": message}, "requestId": str(uuid.uuid4())}).encode()


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
        mounts: dict[str, Mount] | None = None,
    ) -> None:
        self.route_table = route_table
        self.invoke = invoke
        self.cors = cors
        self.extra_get = extra_get or {}
        self.mounts = mounts or {}
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-request: nothing to report, no traceback

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: Gateway
    protocol_version = "HTTP/1.1"
    # A request line too broken to name its version still gets a status line and headers.
    default_request_version = "HTTP/1.1"
    _headers_buffer: list[bytes]  # http.server's, filled by send_response/send_header

    def log_message(self, *args: Any) -> None:  # the functions log each request
        pass

    def setup(self) -> None:
        super().setup()
        # Keep-alive clients wait on no delayed ACK: each response goes out at once.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, 414, 431, 501) as JSON."""
        codes = {
            400: "BAD_REQUEST",
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            414: "URI_TOO_LONG",
            431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
            501: "NOT_IMPLEMENTED",
        }
        if code == 501:  # an unknown method: API Gateway has no route for it
            code, message = 404, "no route for this method and path"
        self.close_connection = True
        with_body = self.command != "HEAD" and code >= 200 and code not in (204, 304)
        reason = self.responses.get(code, ("Bad Request",))[0]
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        body = error_body(code, codes.get(code, "BAD_REQUEST"), message or reason) if with_body else b""
        self.send_header("Content-Length", str(len(body)))
        self._write(body)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def do_OPTIONS(self) -> None:
        if self._mount_of(unquote(urlsplit(self.path).path)):
            self._dispatch()  # a mount answers its own preflights (the console refuses them)
            return
        cors = self.server.cors
        origin = self.headers.get("Origin")
        if not cors or not origin or not self.headers.get("Access-Control-Request-Method"):
            self._dispatch()  # not a preflight: routed as any request
            return
        allowed = [str(o) for o in cors.get("AllowOrigins", [])]
        if "*" not in allowed and origin not in allowed:
            self._send(204, {}, b"")  # API Gateway answers, without CORS headers
            return
        headers = {
            "Access-Control-Allow-Origin": "*" if "*" in allowed else origin,
            "Access-Control-Allow-Methods": ",".join(map(str, cors.get("AllowMethods", ["*"]))),
            "Access-Control-Allow-Headers": ",".join(map(str, cors.get("AllowHeaders", ["*"]))),
            "Access-Control-Max-Age": str(cors.get("MaxAge", 0)),
        }
        self._send(204, headers, b"")

    def _dispatch(self) -> None:
        try:
            self._route()
        except Exception:  # never a traceback or a dropped connection
            self.close_connection = True
            self._send_error(500, "INTERNAL_ERROR", "the local gateway failed on this request")

    def _route(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isascii() or not declared.isdigit():
            self.close_connection = True  # the body's end is unknown: this connection is done
            self._send_error(400, "BAD_REQUEST", "Content-Length must be a non-negative integer")
            return
        length = int(declared)
        if length > MAX_PAYLOAD:
            self.close_connection = True
            self._send_error(413, "PAYLOAD_TOO_LARGE", "the request body is over 10 MiB")
            return
        body = self.rfile.read(length) if length else None
        mount = self._mount_of(path)
        if mount is not None:
            status, headers, raw = mount(self.command, path, url.query, dict(self.headers.items()), body)
            self._send(status, headers, raw)
            return
        if self.command == "GET" and path in self.server.extra_get:
            self._send_json(200, self.server.extra_get[path]())
            return
        for route in self.server.route_table:
            match = route.pattern.match(path)
            if match and route.method in (self.command, "ANY"):
                break
        else:
            self._send_error(404, "NOT_FOUND", f"no route for {self.command} {url.path}")
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
            self._send_error(500, "INTERNAL_ERROR", "the function failed")
            return
        self._send_result(result)

    def _mount_of(self, path: str) -> Mount | None:
        for prefix, mount in self.server.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return mount
        return None

    def _send_result(self, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # A bare return value: API Gateway answers 200 with it as JSON.
            self._send_json(200, result)
            return
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = self._cors({str(k): str(v) for k, v in (result.get("headers") or {}).items()})
        self._send(int(result["statusCode"]), headers, raw, cookies=result.get("cookies") or [])

    def _cors(self, headers: dict[str, str]) -> dict[str, str]:
        """As API Gateway with a CORS configuration: a request from an origin gets the
        configuration's CORS headers, not the function's (none when the origin is not allowed)."""
        cors, origin = self.server.cors, self.headers.get("Origin")
        if not cors or not origin:
            return headers
        kept = {k: v for k, v in headers.items() if not k.lower().startswith("access-control-")}
        allowed = [str(o) for o in cors.get("AllowOrigins", [])]
        if "*" in allowed or origin in allowed:
            kept["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
            if cors.get("ExposeHeaders"):
                kept["Access-Control-Expose-Headers"] = ",".join(map(str, cors["ExposeHeaders"]))
        return kept

    def _send_error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"Content-Type": "application/json"}, error_body(status, code, message))

    def _write(self, body: bytes) -> None:
        """The status line, headers and body in one send (no Nagle wait between them)."""
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and body:
            self._headers_buffer.append(body)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []

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
        if self.close_connection:
            self.send_header("Connection", "close")
        self._write(body)
