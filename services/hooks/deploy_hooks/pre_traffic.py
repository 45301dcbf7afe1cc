"""CodeDeploy's pre-traffic hook: each HTTP function's new version is invoked, read-only,
before any customer request reaches it; the verdict goes back to CodeDeploy.

The probes are requests the API could receive, on routes that only read (``GET
/products``, ``GET /orders``, ...), each with a bearer token no issuer signed (a key id
no key set has): the version must build its container, fetch the issuer's key set (JWKS)
from where it runs, and refuse the token with the API's JSON error body (401). Passing
means the version starts (imports, settings, SnapStart's restore when on), reaches the
issuer and routes; a version that cannot start, cannot reach the key set (503) or answers
5xx fails the deployment, and CodeDeploy never shifts traffic to it. What the probes do
not reach is the database (no token of the issuer is available here): the Migrations
custom resource has migrated it before any version was published, and the rollback
alarms watch the rest.

``TARGETS`` (environment): ``service=version ARN`` pairs, comma-separated (template.yaml
sets the three HTTP functions' new versions). Each invocation is bounded by the time the hook
has left; a hook that cannot report leaves CodeDeploy to time the hook out (one hour),
which also fails the deployment.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

from aws_lambda_powertools import Logger

from common.aws import session

logger = Logger(service="pre-traffic")

MARGIN_S = 5.0  # kept back to report to CodeDeploy
# Routes of each HTTP function that only read; with UNSIGNED_TOKEN each must refuse (401).
PROBES = {
    "orders": (("GET", "/products", 401), ("GET", "/orders", 401)),
    "inventory": (("GET", "/inventory/pre-traffic-check", 401),),
    "shipping": (("GET", "/shipments/00000000-0000-4000-8000-000000000000", 401),),
}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# Well-formed, signed by nobody: its key id is in no key set, so every verifier refuses it
# after fetching the issuer's keys. Not a credential: it grants nothing anywhere.
UNSIGNED_TOKEN = ".".join(
    [
        _b64({"alg": "RS256", "typ": "JWT", "kid": "orderflow-pre-traffic-check"}),
        _b64({"sub": "orderflow-pre-traffic-check", "exp": 0}),
        "c2lnbmVkLWJ5LW5vYm9keQ",
    ]
)


def http_event(method: str, path: str) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request as API Gateway sends it, with UNSIGNED_TOKEN."""
    request_id = str(uuid.uuid4())
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": f"Bearer {UNSIGNED_TOKEN}",
            "x-correlation-id": f"pre-traffic-{request_id}",
            "user-agent": "orderflow-pre-traffic",
        },
        "requestContext": {
            "accountId": "pre-traffic",
            "apiId": "pre-traffic",
            "domainName": "pre-traffic.invalid",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "orderflow-pre-traffic",
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


def probe(client: Any, service: str, target: str) -> list[str]:
    """What is wrong with ``target``'s answers (empty: nothing)."""
    problems = []
    for method, path, expected in PROBES[service]:
        answer = client.invoke(FunctionName=target, Payload=json.dumps(http_event(method, path)).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            error = json.loads(payload or b"{}")
            problems.append(
                f"{target} {method} {path}: {error.get('errorType')}: {error.get('errorMessage')}"
            )
            continue
        reply = json.loads(payload or b"{}")
        status = reply.get("statusCode")
        try:
            body = json.loads(reply.get("body") or "{}")
        except ValueError:
            body = {}
        if status != expected or not isinstance(body.get("error"), dict):
            problems.append(f"{target} {method} {path}: {status} instead of {expected} with an error body")
    return problems


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    from botocore.config import Config

    time_left = max(1.0, context.get_remaining_time_in_millis() / 1000 - MARGIN_S)
    config = Config(
        connect_timeout=min(5.0, time_left), read_timeout=time_left, retries={"total_max_attempts": 2}
    )
    targets = [t.split("=", 1) for t in os.environ.get("TARGETS", "").split(",") if t]
    problems: list[str] = [] if targets else ["no TARGETS to probe"]
    lambda_ = session().create_client("lambda", config=config)
    for service, target in targets:
        try:
            problems += probe(lambda_, service, target)
        except Exception as exc:  # a probe that cannot run is a failed check, not a crash
            problems.append(f"{target}: {type(exc).__name__}: {exc}")
    status = "Failed" if problems else "Succeeded"
    logger.info("pre-traffic check", extra={"status": status, "problems": problems, "targets": targets})
    codedeploy = session().create_client("codedeploy", config=Config(retries={"total_max_attempts": 4}))
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return {"status": status}
