"""``orderflow migrate --stack NAME``: run a deployed stack's migration function.

The function (template.yaml ``MigrationFunction``, services/migrator) runs inside the
VPC, where the database is; from a laptop this only needs the right to invoke it. The
stack's output ``MigrationFunctionArn`` names its live alias. One invocation, never
retried by botocore (a read timeout would otherwise start a second migrator behind the
first, which waits on its lock), waited on for as long as the function may run.
"""

from __future__ import annotations

import json
from typing import Any

from orderflow.ops.target import OpsError

FUNCTION_TIMEOUT_S = 900  # template.yaml MigrationFunction Timeout
OUTPUT = "MigrationFunctionArn"


def _client(service: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(**config))  # type: ignore[call-overload]


def function_of(stack: str) -> str:
    from orderflow.errors import one_line

    try:
        cloudformation = _client("cloudformation", retries={"total_max_attempts": 3}, read_timeout=20)
        answer = cloudformation.describe_stacks(StackName=stack)
    except Exception as exc:
        raise OpsError(
            f"cannot read stack {stack}: {one_line(exc)} (check its name and your credentials)"
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in answer["Stacks"][0].get("Outputs", [])}
    if OUTPUT not in outputs:
        raise OpsError(f"stack {stack} has no output {OUTPUT}: deploy this version of template.yaml first")
    return outputs[OUTPUT]


def run(stack: str) -> list[str]:
    """The schemas migrated; raises OpsError with the function's one-line reason."""
    from orderflow.errors import one_line

    function = function_of(stack)
    try:
        lambda_ = _client(
            "lambda",
            retries={"total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=FUNCTION_TIMEOUT_S + 30,
        )
        answer = lambda_.invoke(FunctionName=function, Payload=json.dumps({"source": "orderflow migrate"}))
    except Exception as exc:
        raise OpsError(f"cannot invoke {function}: {one_line(exc)}") from None
    try:
        payload = json.loads(answer["Payload"].read() or b"null")
    except ValueError:
        payload = None
    if answer.get("FunctionError") or not isinstance(payload, dict):
        error = payload if isinstance(payload, dict) else {}
        kind, message = error.get("errorType", "error"), error.get("errorMessage", "no answer")
        raise OpsError(f"the migration function failed: {kind}: {message} (see its log group)")
    if not payload.get("ok"):
        raise OpsError(f"migrations failed: {payload.get('reason', 'no reason given')}")
    return [str(schema) for schema in payload.get("migrated", [])]
