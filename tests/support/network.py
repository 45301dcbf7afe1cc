"""Misbehaving endpoints on loopback: one that never answers, one that refuses, one that
throttles; and ``StandInServer``, a loopback HTTP server for a test's own stand-in of a service.

A refused port fails fast and hides timeout bugs; a socket that accepts and never
answers is what a partition or a black-holed NAT looks like to a client.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def black_hole() -> Iterator[str]:
    """An http URL whose server accepts connections, reads nothing and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@contextmanager
def refusing() -> Iterator[str]:
    """An http URL on a port nothing listens on (connection refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    yield f"http://127.0.0.1:{port}"


@contextmanager
def throttling() -> Iterator[str]:
    """An http URL that answers every AWS JSON call with ThrottlingException (HTTP 400)."""

    class Throttle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            self.send_response(400)
            self.send_header("content-type", "application/x-amz-json-1.1")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def swallowing_proxy(upstream_port: int) -> Iterator[str]:
    """An http URL that forwards each request to ``upstream_port`` and never returns the answer.

    The upstream (an emulator) does the work; the client sees a read timeout: the
    outcome of its call is unknown to it.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    held: list[socket.socket] = []

    def forward(client: socket.socket) -> None:
        held.append(client)
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        held.append(upstream)
        client.settimeout(0.2)
        while not stop.is_set():
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            upstream.sendall(data)  # the upstream's answer is read by nobody

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            threading.Thread(target=forward, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


class RefusingProxy:
    """An http URL in front of ``upstream`` (an emulator's URL) that answers every call
    with ``X-Amz-Target: <target>`` with the AWS error ``code`` while ``refuse`` is
    set, and forwards everything else (and that target, once ``refuse`` is cleared)."""

    def __init__(self, upstream: str, target: str, code: str, status: int = 400) -> None:
        self.upstream = upstream
        # Refuse only calls whose body holds this (a call carrying one forbidden entry).
        self.only_if_body_has: bytes | None = None
        self.target = target
        self.code = code
        self.status = status
        self.refuse = True
        self.refused = 0  # calls answered with the error
        self.forwarded = 0
        self.url = ""

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        import http.client
        from urllib.parse import urlsplit

        body = handler.rfile.read(int(handler.headers.get("content-length", 0)))
        chosen = self.only_if_body_has is None or self.only_if_body_has in body
        if self.refuse and chosen and handler.headers.get("x-amz-target") == self.target:
            self.refused += 1
            error = json.dumps({"__type": self.code, "message": "injected by the test's proxy"}).encode()
            handler.send_response(self.status)
            handler.send_header("content-type", "application/x-amz-json-1.1")
            handler.send_header("content-length", str(len(error)))
            handler.end_headers()
            handler.wfile.write(error)
            return
        self.forwarded += 1
        parts = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
            conn.request(handler.command, handler.path, body=body, headers=headers)
            reply = conn.getresponse()
            payload = reply.read()
            handler.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    handler.send_header(key, value)
            handler.send_header("content-length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        finally:
            conn.close()


@contextmanager
def refusing_target(upstream: str, target: str, code: str, status: int = 400) -> Iterator[RefusingProxy]:
    """A ``RefusingProxy`` serving on loopback for the block's duration."""
    proxy = RefusingProxy(upstream, target, code, status)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            proxy.answer(self)

        def do_GET(self) -> None:
            proxy.answer(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


class DatabaseLink:
    """A loopback TCP port piped to a PostgreSQL server (its unix socket's path, or its
    TCP host and port), that can be cut: while down, every open connection is closed and
    every new one is closed at once (what a failover looks like to a client: connections
    reset, then refused)."""

    def __init__(self, upstream: str | tuple[str, int]) -> None:
        self.upstream = upstream
        self.down = False
        self.cut_connections = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()

    def url(self, database_url: str) -> str:
        """``database_url`` going through this link instead."""
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        return url.set(host="127.0.0.1", port=self.port, query={}).render_as_string(hide_password=False)

    def cut_for(self, seconds: float) -> None:
        """Down now, up again after ``seconds``."""
        with self._lock:
            self.down = True
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
                self.cut_connections += 1
            self._open.clear()
        timer = threading.Timer(seconds, self._up)
        timer.daemon = True
        timer.start()

    def _up(self) -> None:
        with self._lock:
            self.down = False

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, target):
                with contextlib.suppress(OSError):
                    conn.close()

    def _accept(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client = self._server.accept()[0]
            except OSError:
                continue
            with self._lock:
                if self.down:
                    client.close()
                    self.cut_connections += 1
                    continue
                family = socket.AF_UNIX if isinstance(self.upstream, str) else socket.AF_INET
                upstream = socket.socket(family, socket.SOCK_STREAM)
                upstream.connect(self.upstream)
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def __enter__(self) -> DatabaseLink:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()
        with self._lock:
            for conn in self._open:
                conn.close()


def database_link(database_url: str) -> DatabaseLink:
    """A ``DatabaseLink`` to the server of ``database_url`` (use it with ``with``)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if "unix_sock" in url.query:
        return DatabaseLink(str(url.query["unix_sock"]))
    return DatabaseLink((url.host or "127.0.0.1", url.port or 5432))


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with ``reply``."""

    def reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class StandInServer:
    """``handler`` served on a free loopback port from a daemon thread until ``close``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
