"""A local stand-in for the Lambda runtime's bootstrap (standard library only).

Started as ``python bootstrap.py`` with:

* ``ORDERFLOW_HANDLER``: ``module.attribute`` (the template's Handler);
* ``ORDERFLOW_PATHS``: the function's code and its layers, ``os.pathsep``-separated,
  put first on ``sys.path`` as Lambda puts ``/var/task`` and ``/opt/python``;
* ``ORDERFLOW_FUNCTION``, ``ORDERFLOW_TIMEOUT``, ``ORDERFLOW_MEMORY``: for the context;
* ``ORDERFLOW_PROFILE`` (optional): a folder; the handler's invocations run under
  cProfile, dumped to ``<folder>/<function>.prof`` when the container ends.

It imports the handler once (the cold start), then serves invocations: one JSON
request per line on stdin, one JSON reply per line on stdout. The function's own
prints and logs are sent to stderr, so they can never corrupt a reply.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(
        self,
        function_name: str = "local-function",
        memory_limit_in_mb: int = 512,
        timeout_s: float = 30.0,
        aws_request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


def main() -> int:
    # Never import from this script's own folder (it holds orderflow's modules).
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    paths = [p for p in os.environ.get("ORDERFLOW_PATHS", "").split(os.pathsep) if p]
    sys.path[0:0] = paths

    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the function's stdout (Powertools logs) joins stderr
    sys.stdout = sys.stderr

    name = os.environ.get("ORDERFLOW_FUNCTION", "local-function")
    timeout = float(os.environ.get("ORDERFLOW_TIMEOUT", "30"))
    memory = int(os.environ.get("ORDERFLOW_MEMORY", "512"))
    module_name, _, attribute = os.environ["ORDERFLOW_HANDLER"].rpartition(".")

    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:  # an init error, as Lambda reports it
        reply.write(json.dumps({"init": False, **_error(exc)}) + "\n")
        return 1
    reply.write(json.dumps({"init": True, "initMs": (time.perf_counter() - started) * 1000}) + "\n")

    profile_dir = os.environ.get("ORDERFLOW_PROFILE")
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
    try:
        _serve(handler, reply, name, memory, timeout, profiler)
    finally:
        if profiler is not None and profile_dir:
            profiler.dump_stats(os.path.join(profile_dir, f"{name}.prof"))
    return 0


def _serve(handler: Any, reply: Any, name: str, memory: int, timeout: float, profiler: Any) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        context = LambdaContext(name, memory, timeout, request.get("requestId"))
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        try:
            result = handler(request["event"], context)
            answer: dict[str, Any] = {"ok": True, "result": result}
        except Exception as exc:
            answer = {"ok": False, **_error(exc)}
        finally:
            if profiler is not None:
                profiler.disable()
        answer["durationMs"] = (time.perf_counter() - began) * 1000
        reply.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
