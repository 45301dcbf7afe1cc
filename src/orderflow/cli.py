"""The ``orderflow`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from orderflow.ops import outbox as outbox_ops


def _migrate(args: argparse.Namespace) -> int:
    from orderflow.migrate import migrate

    target: Any = os.environ.get("DATABASE_URL")
    if not target and os.environ.get("DB_HOST"):
        # In AWS: through the RDS Proxy as the functions connect (IAM token per
        # connection, TLS), from DB_HOST, DB_PORT, DB_NAME and DB_USER.
        from common.db import make_engine
        from common.settings import Settings

        target = make_engine(Settings.from_env())
    if not target:
        print(
            "orderflow migrate: set DATABASE_URL (postgresql+pg8000://...), or DB_HOST, DB_NAME "
            "and DB_USER for an RDS Proxy with IAM auth",
            file=sys.stderr,
        )
        return 2
    try:
        for schema in migrate(target):
            print(f"migrated schema {schema}")
    except Exception as exc:  # a clear line, not a traceback, for the usual mistakes
        print(f"orderflow migrate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from orderflow.paths import ROOT
    from orderflow.schemas import write

    stale = write(check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    if args.check and stale:
        print("run `orderflow schemas` and commit the result", file=sys.stderr)
        return 1
    if not stale:
        print("generated documents are up to date")
    return 0


def _invoke(args: argparse.Namespace) -> int:
    import json

    from orderflow.runtime import FunctionProcess, InvokeError, find_python, is_build_output, spec_for

    template = Path(args.template) if args.template else _default_template()
    try:
        event = json.loads(Path(args.event).read_text()) if args.event != "-" else json.load(sys.stdin)
    except (OSError, ValueError) as exc:
        print(f"orderflow invoke: cannot read event {args.event}: {exc}", file=sys.stderr)
        return 2
    try:
        overrides = json.loads(Path(args.env_vars).read_text()) if args.env_vars else None
        spec = spec_for(args.function_id, template, overrides)
    except (OSError, ValueError, KeyError) as exc:
        print(f"orderflow invoke: {exc}", file=sys.stderr)
        return 2
    built = is_build_output(template)
    python = sys.executable
    if built:  # a sam build output: its own runtime, nothing but code and layers
        python = find_python(spec.runtime) or ""
        if not python:
            print(
                f"orderflow invoke: {spec.runtime} is not installed, and the build output needs it",
                file=sys.stderr,
            )
            return 2
    function = FunctionProcess(spec, python=python, isolated=built)
    try:
        result = function.invoke(event)
    except InvokeError as exc:
        print(json.dumps(exc.payload, indent=2))
        return 1
    finally:
        function.stop()
    print(json.dumps(result, indent=2))
    return 0


def _default_template() -> Path:
    # As sam local invoke: the build output's template when there is one.
    built = Path(".aws-sam/build/template.yaml")
    return built if built.exists() else Path("template.yaml")


def _local(args: argparse.Namespace) -> int:
    from orderflow.local import Options, StartupError, run

    options = Options(
        port=args.port,
        aws_port=args.aws_port,
        database_url=os.environ.get("DATABASE_URL") or None,
        relay_every_s=args.relay_every,
        retry_delay_s=args.retry_delay,
        log_level=args.log_level,
        json_logs=args.json_logs,
        **({"state_dir": Path(args.state_dir).resolve()} if args.state_dir else {}),
    )
    try:
        return run(options)
    except StartupError as exc:
        print(f"orderflow local: {exc}", file=sys.stderr)
        return 1


def _token(args: argparse.Namespace) -> int:
    from orderflow import devauth
    from orderflow.local import STATE_DIR

    state_dir = Path(args.state_dir).resolve() if args.state_dir else STATE_DIR
    print(devauth.token(state_dir, sub=args.sub, email=args.email, admin=args.admin))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from orderflow.demo import DemoError, run
    from orderflow.local import STATE_DIR

    state_dir = Path(args.state_dir).resolve() if args.state_dir else STATE_DIR
    try:
        return run(state_dir, api=args.api, aws=args.aws, timeout_s=args.timeout)
    except (DemoError, OSError) as exc:
        print(f"orderflow demo: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orderflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply every service's migrations to DATABASE_URL").set_defaults(
        run=_migrate
    )
    schemas = sub.add_parser("schemas", help="regenerate event JSON Schemas and the OpenAPI document")
    schemas.add_argument("--check", action="store_true", help="fail if a checked-in file is stale")
    schemas.set_defaults(run=_schemas)
    invoke = sub.add_parser(
        "invoke", help="run one function of template.yaml with an event file, as sam local invoke"
    )
    invoke.add_argument("function_id", metavar="FUNCTION_ID", help="logical id in template.yaml")
    invoke.add_argument("--event", "-e", required=True, help="event JSON file (- for stdin)")
    invoke.add_argument("--env-vars", "-n", help="JSON of environment overrides (sam's format)")
    invoke.add_argument("--template", "-t", help="default: .aws-sam/build/template.yaml if built")
    invoke.set_defaults(run=_invoke)
    local = sub.add_parser("local", help="run the whole suite on this machine")
    local.add_argument("--port", type=int, default=3000, help="HTTP API port (default 3000)")
    local.add_argument("--aws-port", type=int, default=4566, help="AWS emulator port (default 4566)")
    local.add_argument(
        "--relay-every",
        type=float,
        help="seconds between outbox relay runs (default: the template's schedule)",
    )
    local.add_argument(
        "--retry-delay",
        type=float,
        help="seconds before a failed event is retried (default: exponential from 1 s)",
    )
    local.add_argument("--log-level", default="INFO", help="the functions' LOG_LEVEL")
    local.add_argument("--json-logs", action="store_true", help="JSON log lines, tagged with the function")
    local.add_argument(
        "--state-dir",
        help="where the embedded database, dev key and state live (default: .orderflow/ in the project)",
    )
    local.set_defaults(run=_local)

    token = sub.add_parser("token", help="print a token the local suite accepts")
    token.add_argument("--sub", required=True, help="the customer id (the token's subject)")
    token.add_argument("--email", help="the address for confirmation emails")
    token.add_argument("--admin", action="store_true", help="grant the admin scope")
    token.add_argument("--state-dir", help="the state folder of the suite (default: .orderflow/)")
    token.set_defaults(run=_token)

    demo = sub.add_parser("demo", help="place orders against a running local suite and follow them")
    demo.add_argument("--api", help="the suite's API URL (default: read from the state folder)")
    demo.add_argument("--aws", help="the suite's AWS emulator URL (default: from the state folder)")
    demo.add_argument("--timeout", type=float, default=60, help="seconds to wait for every order")
    demo.add_argument("--state-dir", help="the state folder of the suite (default: .orderflow/)")
    demo.set_defaults(run=_demo)
    outbox_ops.register(sub)

    args, _ = parser.parse_known_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
