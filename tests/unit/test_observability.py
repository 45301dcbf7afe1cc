"""The Tracer degrades to a no-op instead of failing the cold start."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_isolated(code: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: Powertools caches the X-Ray SDK import per process.
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_the_xray_sdk_handlers_still_get_a_working_tracer():
    # Given the X-Ray SDK cannot be imported and tracing is not disabled
    result = run_isolated(
        """
        import sys
        sys.modules["aws_xray_sdk"] = None  # makes "import aws_xray_sdk" fail
        sys.modules["aws_xray_sdk.core"] = None
        from common.observability import NoopTracer, tracer

        @tracer.capture_lambda_handler
        def handler(event, context):
            return "ok"

        print(type(tracer).__name__, handler({}, None))
        """,
        {},
    )
    # Then the tracer is the no-op one, decorated handlers run, and the log says why
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "NoopTracer ok"
    assert "aws-xray-sdk is not installed" in lines[0]


def test_disabled_tracing_never_imports_the_xray_sdk():
    result = run_isolated(
        """
        import sys
        from common.observability import tracer
        print(type(tracer).__name__, "aws_xray_sdk" in sys.modules)
        """,
        {"POWERTOOLS_TRACE_DISABLED": "true"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "NoopTracer False"
