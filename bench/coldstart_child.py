"""One cold start, in a fresh interpreter: import a handler, serve one event, report.

Run by bench/run.py as ``python [-X importtime] bench/coldstart_child.py VARIANT EVENT RESULT``
with the function's environment. ``VARIANT`` is ``ours`` (OrdersApiFunction's handler),
``baseline`` (bench/baseline_handler.py's ``handler``: the same work by hand) or ``inserts``
(its ``inserts_handler``: the same inserts only). The timings go to the file ``RESULT`` as
JSON (stdout belongs to the handler: Powertools writes its metrics there).

``BENCH_SPAWN_NS`` is the parent's ``time.monotonic_ns()`` just before it spawned us;
CLOCK_MONOTONIC is system-wide on Linux, so the difference covers interpreter start-up
(site, .pth files) too, which this process cannot time by itself.
"""

import time

T_MAIN = time.monotonic_ns()  # first line of our code: the interpreter is up

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

# Lambda's runtime has its own context object ready before it imports the handler;
# this one is ours, imported before the clock starts for both variants alike.
from orderflow.lambda_runtime import LambdaContext  # noqa: E402

FRAMEWORKS = ("sqlalchemy", "pydantic", "aws_lambda_powertools", "alembic")
CLIENTS = ("jwt", "boto3", "botocore")  # the inserts-only baseline must load none of them either
HANDLERS = {  # bench/ is sys.path[0]
    "ours": ("orders.handlers.api", "handler"),
    "baseline": ("baseline_handler", "handler"),
    "inserts": ("baseline_handler", "inserts_handler"),
}


def _peak_rss_kb() -> int:
    """This process's own peak resident set (VmHWM), what ru_maxrss means to say."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    variant, event_path, result_path = sys.argv[1:4]
    with open(event_path) as f:
        event = json.load(f)
    context = LambdaContext(function_name="OrdersApiFunction")

    t_import = time.monotonic_ns()
    module, attribute = HANDLERS[variant]
    handler = getattr(importlib.import_module(module), attribute)
    t_invoke = time.monotonic_ns()
    response = handler(event, context)
    t_done = time.monotonic_ns()

    spawn = int(os.environ["BENCH_SPAWN_NS"])
    result = {
        "variant": variant,
        "status": response.get("statusCode"),
        "startup_ms": (T_MAIN - spawn) / 1e6,  # spawn -> our first line
        "import_ms": (t_invoke - t_import) / 1e6,
        "first_invoke_ms": (t_done - t_invoke) / 1e6,
        "spawn_to_return_ms": (t_done - spawn) / 1e6,
        "peak_rss_kb": _peak_rss_kb(),
        # ru_maxrss is inflated on Linux: execve keeps the high-water mark of the mm
        # it replaces, i.e. the parent's, since the child was forked from it.
        "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "modules": len(sys.modules),
        "frameworks_loaded": sorted(m for m in FRAMEWORKS if m in sys.modules),
        "clients_loaded": sorted(m for m in CLIENTS if m in sys.modules),
        "body": response.get("body") if response.get("statusCode") != 201 else None,
    }
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
