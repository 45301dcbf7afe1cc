"""``orderflow migrate --stack NAME`` from a laptop: the stack's output names the migration
function, which is invoked once and its answer printed.

moto cannot run a Lambda function without Docker, so a loopback HTTP server stands in
for CloudFormation (DescribeStacks, the query protocol) and Lambda (Invoke): the real
botocore clients send their real requests to it (``AWS_ENDPOINT_URL``), and the test
checks what they asked for and how the CLI reads each answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.network import QuietHandler, StandInServer

ALIAS = "arn:aws:lambda:us-east-1:123456789012:function:orderflow-prod-MigrationFunction-abc:live"
OUTPUTS = """<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
<DescribeStacksResult><Stacks><member>
<StackName>orderflow-prod</StackName><StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/x/y</StackId>
<StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-12-01T00:00:00Z</CreationTime>
<Outputs>{outputs}</Outputs>
</member></Stacks></DescribeStacksResult>
<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DescribeStacksResponse>"""
OUTPUT = "<member><OutputKey>{key}</OutputKey><OutputValue>{value}</OutputValue></member>"


class StandIn:
    """CloudFormation and Lambda on one loopback port; ``lambda_answer`` is what Invoke returns."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.outputs = {"MigrationFunctionArn": ALIAS, "EventBusName": "orderflow-prod"}
        self.lambda_answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        stand_in = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stand_in.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path.startswith("/2015-03-31/functions/"):
                    status, headers, payload = stand_in.lambda_answer
                    self.reply(status, {"Content-Type": "application/json", **headers}, payload)
                    return
                form = urllib.parse.parse_qs(body.decode())
                assert form["Action"] == ["DescribeStacks"], form
                outputs = "".join(OUTPUT.format(key=k, value=v) for k, v in stand_in.outputs.items())
                self.reply(200, {"Content-Type": "text/xml"}, OUTPUTS.format(outputs=outputs).encode())

        self.http = StandInServer(Handler)
        self.url = self.http.url

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


def migrate(stand_in: StandIn, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": stand_in.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    return subprocess.run(
        [sys.executable, "-m", "orderflow.cli", "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_invokes_the_stacks_migration_function_once_and_prints_the_schemas(stand_in: StandIn):
    stand_in.lambda_answer = (200, {}, json.dumps({"ok": True, "migrated": ["eventing", "orders"]}).encode())
    result = migrate(stand_in, "--stack", "orderflow-prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "migrated schema eventing (stack orderflow-prod)",
        "migrated schema orders (stack orderflow-prod)",
    ]
    describe, invoke = stand_in.requests
    assert urllib.parse.parse_qs(describe["body"].decode())["StackName"] == ["orderflow-prod"]
    # The live alias, synchronously (RequestResponse), with the payload the handler reads
    # as a direct invocation.
    assert invoke["path"] == f"/2015-03-31/functions/{urllib.parse.quote(ALIAS, safe='')}/invocations"
    assert invoke["headers"].get("X-Amz-Invocation-Type", "RequestResponse") == "RequestResponse"
    assert json.loads(invoke["body"]) == {"source": "orderflow migrate"}


def test_a_failed_migration_prints_the_functions_reason(stand_in: StandIn):
    answer = {"ok": False, "reason": "OperationalError: 55P03 canceling statement due to lock timeout"}
    stand_in.lambda_answer = (200, {}, json.dumps(answer).encode())
    result = migrate(stand_in, "--stack", "orderflow-prod")
    assert result.returncode == 1
    assert result.stderr.strip() == f"orderflow migrate: migrations failed: {answer['reason']}"


def test_a_function_error_is_reported_and_not_retried(stand_in: StandIn):
    error = {"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'alembic'"}
    stand_in.lambda_answer = (200, {"X-Amz-Function-Error": "Unhandled"}, json.dumps(error).encode())
    result = migrate(stand_in, "--stack", "orderflow-prod")
    assert result.returncode == 1
    assert "Runtime.ImportModuleError: No module named 'alembic'" in result.stderr
    assert len([r for r in stand_in.requests if r["path"].startswith("/2015-03-31/")]) == 1


def test_a_throttled_invocation_is_not_retried_either(stand_in: StandIn):
    # A second migrator would only queue behind the first one's lock: one attempt, then say so.
    error = {"Type": "User", "message": "Rate Exceeded."}
    stand_in.lambda_answer = (
        429,
        {"X-Amzn-ErrorType": "TooManyRequestsException"},
        json.dumps(error).encode(),
    )
    result = migrate(stand_in, "--stack", "orderflow-prod")
    assert result.returncode == 1
    assert "cannot invoke" in result.stderr and "TooManyRequestsException" in result.stderr, result.stderr
    assert len([r for r in stand_in.requests if r["path"].startswith("/2015-03-31/")]) == 1


def test_a_stack_without_the_output_says_what_to_do(stand_in: StandIn):
    del stand_in.outputs["MigrationFunctionArn"]
    result = migrate(stand_in, "--stack", "orderflow-prod")
    assert result.returncode == 1
    assert "has no output MigrationFunctionArn: deploy this version of template.yaml first" in result.stderr
    assert not [r for r in stand_in.requests if r["path"].startswith("/2015-03-31/")]
