"""``orderflow local`` as a subprocess, and a client that talks to it only from outside:
HTTP to its API, boto3 and ``/moto-api`` to its AWS emulator.

Used by the end-to-end tests (tests/e2e) and the local benchmark (bench/local.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from orderflow import devauth

READY = re.compile(r"\bready\b")
SETTLED = frozenset({"SHIPPING", "REJECTED"})
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "line2": None,
    "city": "London",
    "postalCode": "N1 9GU",
    "country": "GB",
}


def free_ports(count: int) -> list[int]:
    """Ports free on loopback right now (held together, so they differ)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Response:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            raw, status, got = answer.read(), answer.status, answer.headers
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, exc.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Response(status, parsed, {k.lower(): v for k, v in got.items()})


@dataclass
class LocalSuite:
    """One ``orderflow local`` process: started, waited for, stopped with SIGTERM."""

    state_dir: Path
    database_url: str | None = None  # None: the embedded PostgreSQL in state_dir
    extra_args: Sequence[str] = ("--relay-every", "1", "--retry-delay", "0.2")
    command: Sequence[str] | None = None  # default: this interpreter's orderflow.cli local
    cwd: Path | None = None
    pass_state_dir: bool = True  # False: the command's default folder (state_dir must be it)
    port: int = 0
    aws_port: int = 0
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 60) -> LocalSuite:
        if not (self.port and self.aws_port):
            self.port, self.aws_port = free_ports(2)
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        command = list(self.command or [sys.executable, "-m", "orderflow.cli", "local"])
        args = [
            *command,
            "--port",
            str(self.port),
            "--aws-port",
            str(self.aws_port),
            *(["--state-dir", str(self.state_dir)] if self.pass_state_dir else []),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=self.cwd,
            start_new_session=True,  # its own group: Ctrl-C in pytest is ours only
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.kill()
                reason = f"exited with {code}" if code is not None else f"not ready in {timeout_s:.0f} s"
                raise AssertionError(f"orderflow local {reason}; its log:\n{self.log}")
        return self

    def _read_log(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY.search(line):
                self._ready.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def descendants(self) -> list[psutil.Process]:
        """The suite's processes, and the embedded PostgreSQL (a daemon, not a child)."""
        assert self.process is not None
        found = psutil.Process(self.process.pid).children(recursive=True)
        postmaster = self.state_dir / "pgdata" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            found.append(psutil.Process(int(postmaster.read_text().split()[0])))
        return found

    def stop(self, timeout_s: float = 30) -> tuple[int, list[psutil.Process]]:
        """SIGTERM; its exit status and whatever it started that is still alive after."""
        assert self.process is not None
        started = self.descendants()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            message = f"orderflow local ignored SIGTERM for {timeout_s:.0f} s:\n{self.log}"
            raise AssertionError(message) from None
        _, alive = psutil.wait_procs(started, timeout=5)
        return code, alive

    def kill(self) -> None:
        """Last resort (a test failed half-way): nothing may outlive the test."""
        if self.process is None:
            return
        leftovers = []
        with contextlib.suppress(psutil.Error):
            leftovers = self.descendants()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _, alive = psutil.wait_procs(leftovers, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    # ------------------------------------------------------------------ clients
    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def aws(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "local.json").read_text()))

    def request(self, method: str, path: str, **kw: Any) -> Response:
        return http(method, self.api + path, **kw)

    def token(self, sub: str, email: str | None = None, admin: bool = False) -> str:
        return devauth.token(self.state_dir, sub=sub, email=email, admin=admin)

    def aws_client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        """The SES messages the emulator accepted for ``address``."""
        with urllib.request.urlopen(f"{self.aws}/moto-api/data.json", timeout=10) as answer:  # noqa: S310
            data = json.loads(answer.read())
        return [
            m
            for m in data.get("ses", {}).get("Message", [])
            if address in m.get("destinations", {}).get("ToAddresses", [])
        ]

    # ------------------------------------------------------------------ the shop
    def stock(self, sku: str, on_hand: int, price: str = "12.50") -> None:
        admin = self.token("e2e-admin", admin=True)
        for path, body in (
            (f"/products/{sku}", {"name": f"Product {sku}", "unitPrice": price, "currency": "USD"}),
            (f"/inventory/{sku}", {"onHand": on_hand}),
        ):
            answer = self.request("PUT", path, token=admin, body=body)
            assert answer.status == 200, (path, answer.status, answer.body)

    def inventory(self, sku: str) -> dict[str, Any]:
        answer = self.request("GET", f"/inventory/{sku}", token=self.token("e2e-admin", admin=True))
        assert answer.status == 200, answer.body
        return dict(answer.body)

    def place(self, token: str, items: list[dict[str, Any]], key: str | None = None) -> Response:
        headers = {"Idempotency-Key": key} if key else None
        return self.request(
            "POST", "/orders", token=token, headers=headers, body={"items": items, "shippingAddress": ADDRESS}
        )

    def wait_settled(self, token: str, order_id: str, timeout_s: float = 30) -> dict[str, Any]:
        order = wait_for(
            lambda: self.request("GET", f"/orders/{order_id}", token=token).body,
            lambda o: isinstance(o, dict) and o.get("status") in SETTLED,
            timeout_s,
            f"order {order_id} to settle",
            self,
        )
        return dict(order)


def wait_for(
    get: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout_s: float,
    what: str,
    suite: LocalSuite | None = None,
    every_s: float = 0.1,
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            tail = "\n".join(suite.lines[-60:]) if suite else ""
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}; last value: {value!r}\n{tail}")
        time.sleep(every_s)


@contextlib.contextmanager
def running(suite: LocalSuite, timeout_s: float = 60) -> Iterator[LocalSuite]:
    """A started suite, killed at the end whatever happened (tests stop it themselves)."""
    try:
        yield suite.start(timeout_s)
    finally:
        suite.kill()


def orderflow(suite: LocalSuite, *args: str) -> subprocess.CompletedProcess[str]:
    """``orderflow ARGS --state-dir`` of ``suite``, as an operator runs it; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "orderflow.cli", *args, "--state-dir", str(suite.state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result
