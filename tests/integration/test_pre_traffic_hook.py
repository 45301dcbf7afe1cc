"""The pre-traffic hook (services/hooks) against OrdersApiFunction's real handler.

moto runs no Lambda code without Docker and has no CodeDeploy hook API, so a loopback
HTTP server stands in for both: Lambda's Invoke runs the real handler in this process
(wired to this test's PostgreSQL and emulator, as the local suite wires it), the way
Lambda would run the new version, and CodeDeploy's PutLifecycleEventHookExecutionStatus
is recorded. The hook's botocore clients reach it through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orderflow.lambda_runtime import LambdaContext
from tests.support.network import QuietHandler, StandInServer

pytestmark = [pytest.mark.db, pytest.mark.aws]

GOOD = "arn:aws:lambda:us-east-1:123456789012:function:orders-api:7"
BROKEN = "arn:aws:lambda:us-east-1:123456789012:function:orders-api:8"


class StandIn:
    def __init__(self, versions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
        self.invoked: list[tuple[str, dict[str, Any]]] = []
        self.reports: list[dict[str, Any]] = []
        stand_in = self
        lock = threading.Lock()  # one invocation at a time, as one environment serves them

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/2015-03-31/functions/"):
                    name = urllib.parse.unquote(self.path.split("/")[3])
                    event = json.loads(body)
                    stand_in.invoked.append((name, event))
                    headers = {}
                    with lock:
                        try:
                            payload = versions[name](event)
                        except Exception as exc:  # as Lambda reports an unhandled error
                            headers["X-Amz-Function-Error"] = "Unhandled"
                            payload = {
                                "errorType": type(exc).__name__,
                                "errorMessage": str(exc),
                                "stackTrace": traceback.format_tb(exc.__traceback__),
                            }
                    self._send(200, headers, payload)
                    return
                target = self.headers.get("X-Amz-Target", "")
                assert target == "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus", target
                request = json.loads(body)
                stand_in.reports.append(request)
                self._send(
                    200, {}, {"lifecycleEventHookExecutionId": request["lifecycleEventHookExecutionId"]}
                )

            def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
                self.reply(
                    status, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode()
                )

        self.http = StandInServer(Handler)
        self.url = self.http.url

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def stand_in(container: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    from common import bootstrap
    from common.settings import Settings
    from orders.handlers.api import handler

    def good(event: dict[str, Any]) -> dict[str, Any]:
        return handler(event, LambdaContext(function_name="OrdersApiFunction"))  # type: ignore[no-any-return]

    def broken(event: dict[str, Any]) -> dict[str, Any]:
        # A version that cannot reach its issuer's key set (as from a private subnet with
        # no route to it): a port on this machine that refuses connections.
        unreachable = {
            **settings.model_dump(by_alias=True),
            "JWKS_URL": f"http://127.0.0.1:{closed_port()}/jwks",
        }
        bootstrap.override(settings=Settings(**unreachable), events_client=container.events_client)
        try:
            return handler(event, LambdaContext(function_name="OrdersApiFunction"))  # type: ignore[no-any-return]
        finally:
            bootstrap.override(settings=settings, events_client=container.events_client)

    server = StandIn({GOOD: good, BROKEN: broken})
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield server
    server.close()


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens once it is closed


def run_hook(targets: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from deploy_hooks import pre_traffic

    monkeypatch.setenv("TARGETS", targets)
    event = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-exec-1"}
    return pre_traffic.handler(event, LambdaContext(function_name="CodeDeployHook_orderflow", timeout_s=60))


def test_a_working_version_is_reported_succeeded(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch):
    assert run_hook(f"orders={GOOD}", monkeypatch) == {"status": "Succeeded"}
    assert stand_in.reports == [
        {"deploymentId": "d-ABCDEF123", "lifecycleEventHookExecutionId": "hook-exec-1", "status": "Succeeded"}
    ]
    probed = [
        (name, event["requestContext"]["http"]["method"], event["rawPath"])
        for name, event in stand_in.invoked
    ]
    assert probed == [(GOOD, "GET", "/products"), (GOOD, "GET", "/orders")]
    # the token is one no issuer signed: refused after the version fetched the real key set
    from deploy_hooks.pre_traffic import UNSIGNED_TOKEN

    assert all(
        event["headers"]["authorization"] == f"Bearer {UNSIGNED_TOKEN}" for _, event in stand_in.invoked
    )


def test_a_broken_version_is_reported_failed(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch):
    assert run_hook(f"orders={GOOD},orders={BROKEN}", monkeypatch) == {"status": "Failed"}
    assert [r["status"] for r in stand_in.reports] == ["Failed"]


def test_a_version_that_cannot_be_invoked_is_reported_failed(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
):
    missing = "arn:aws:lambda:us-east-1:123456789012:function:orders-api:9"  # KeyError in the stand-in
    assert run_hook(f"orders={missing}", monkeypatch) == {"status": "Failed"}
    assert [r["status"] for r in stand_in.reports] == ["Failed"]


def test_no_targets_is_a_failure_not_a_pass(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch):
    assert run_hook("", monkeypatch) == {"status": "Failed"}
    assert not stand_in.invoked
