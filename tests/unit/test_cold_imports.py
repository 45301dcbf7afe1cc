"""Cold start: what a function never calls is never imported.

Each check runs in a fresh interpreter (an import, once made, stays in
``sys.modules``), with the function's environment and tracing disabled as in the
benchmark. A failure here means a heavy import came back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

HANDLERS = [
    "orders.handlers.api",
    "orders.handlers.relay",
    "orders.handlers.status",
    "inventory.handlers.reserve",
    "inventory.handlers.api",
    "notifications.handlers.send_email",
    "shipping.handlers.request",
]

# boto3 (any import of it loads s3transfer), Powertools' OpenAPI models (documentation
# only), the X-Ray SDK (tracing disabled), and the CLI's tools.
NEVER_AT_RUN_TIME = [
    "boto3",
    "s3transfer",
    "aws_lambda_powertools.event_handler.openapi.models",
    "aws_xray_sdk",
    "alembic",
    "yaml",
    "moto",
]


def loaded_after(code: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env.update(
        POWERTOOLS_TRACE_DISABLED="true",
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        JWKS_URL="http://127.0.0.1:9/.well-known/jwks.json",
        JWT_ISSUER="https://issuer.example",
        JWT_AUDIENCE="orders",
    )
    probe = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps({{"loaded": [m for m in {NEVER_AT_RUN_TIME!r} if m in sys.modules],
                           "result": globals().get("result")}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("module", HANDLERS)
def test_importing_a_handler_loads_nothing_it_never_calls(module):
    assert loaded_after(f"import {module}")["loaded"] == []


def test_the_aws_clients_are_built_without_boto3_or_s3transfer():
    # Given the clients every function builds (EventBridge, SES, RDS for IAM tokens)
    out = loaded_after(
        """
        from common.bootstrap import Container
        from common.db import make_engine
        from common.settings import Settings

        c = Container()
        result = [c.events_client.meta.service_model.service_name,
                  c.ses_client.meta.service_model.service_name]
        make_engine(Settings(DB_HOST="proxy.example", DB_NAME="orders", DB_USER="orders_api",
                             AWS_REGION="eu-west-1"))
        """
    )
    # Then they are real botocore clients, and neither boto3 nor s3transfer was loaded
    assert out["result"] == ["events", "sesv2"]
    assert out["loaded"] == []


def test_a_cold_request_through_the_orders_api_loads_no_openapi_models():
    # Given a cold OrdersApiFunction answering a first request (no token: 401, no network)
    out = loaded_after(
        """
        from orderflow.lambda_runtime import LambdaContext, http_api_event
        from orders.handlers.api import handler

        response = handler(http_api_event("POST", "/orders", body="{}"),
                           LambdaContext(function_name="OrdersApiFunction"))
        result = response["statusCode"]
        """
    )
    # Then the route answered and the documentation-only models stayed unloaded
    assert out["result"] == 401
    assert out["loaded"] == []


def test_event_and_body_models_are_built_on_first_use_only():
    # Given a consumer that imported every event model (common.events)
    out = loaded_after(
        """
        from common import events

        before = [events.OrderCreated.__pydantic_complete__, events.ShipmentRequested.__pydantic_complete__]
        events.OrderCreated.model_json_schema()
        result = before + [events.OrderCreated.__pydantic_complete__,
                           events.ShipmentRequested.__pydantic_complete__]
        """
    )
    # Then no validator was built at import; using one model builds that one alone
    assert out["result"] == [False, False, True, False]


@pytest.mark.parametrize("available", [True, False])
def test_a_handler_registers_the_snapstart_hooks_only_where_the_runtime_has_them(available):
    # Given Lambda's Python runtime, which brings snapshot_restore_py, or another without it
    pytest.importorskip("snapshot_restore_py")
    hide = "" if available else "sys.modules['snapshot_restore_py'] = None  # import fails"
    out = loaded_after(
        f"""
        import sys
        {hide}
        import orders.handlers.api
        from common import snapstart

        result = [snapstart._registered, sys.modules.get("snapshot_restore_py") is not None]
        """
    )
    # Then the handler imports either way, and registers its hooks where it can
    assert out["result"] == [available, available]
