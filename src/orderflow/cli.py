"""Orderflow's command line: run the suite on this machine (local), call one function
(invoke), mint dev tokens (token), migrate a database (migrate), and operate a running
suite or a deployed stack (dlq, replay, outbox, journey)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from orderflow.errors import CommandError, one_line
from orderflow.parser import Parser


def _migrate(args: argparse.Namespace) -> int:
    if args.stack:
        from orderflow.ops import migrations
        from orderflow.ops.target import OpsError

        try:
            for schema in migrations.run(args.stack):
                print(f"migrated schema {schema} (stack {args.stack})")
        except OpsError as exc:
            print(f"orderflow migrate: {exc}", file=sys.stderr)
            return 1
        return 0

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
        print(
            f"orderflow migrate: {one_line(exc)} (check DATABASE_URL and that the server is up)",
            file=sys.stderr,
        )
        return 1
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from orderflow.paths import ROOT
    from orderflow.schemas import write

    if args.breaking_since:
        from orderflow.breaking import GateError, breaking_changes

        try:
            changes = breaking_changes(ROOT, args.breaking_since)
        except GateError as exc:
            print(f"orderflow schemas: cannot compare with {args.breaking_since}: {exc}", file=sys.stderr)
            return 2
        for change in changes:
            print(f"breaking: {change}")
        if changes:
            print(
                f"{len(changes)} breaking change(s) since {args.breaking_since}: within version 1.0 only "
                "additions old readers ignore may ship (docs/events.md, Versioning)",
                file=sys.stderr,
            )
            return 1
        print(f"no breaking change since {args.breaking_since}")
        if not args.check:
            return 0
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
        overrides = json.loads(Path(args.env_vars).read_text()) if args.env_vars else {}
        overrides.setdefault("Parameters", {})
        if args.local:
            overrides["Parameters"].update(_local_suite_environment(_state_dir(args)))
        if not any(k in os.environ or k in overrides["Parameters"] for k in ("AWS_ACCESS_KEY_ID",)):
            # As sam local invoke: the function gets credentials; dummy ones unless real ones are set.
            from orderflow.emulator import CREDENTIALS

            overrides["Parameters"].update(CREDENTIALS)
        spec = spec_for(args.function_id, template, overrides)
    except (OSError, ValueError, KeyError) as exc:
        print(f"orderflow invoke: {one_line(exc)}", file=sys.stderr)
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
        # Lambda's error document; its stack trace only when asked for.
        shown = ("errorMessage", "errorType", *(("stackTrace",) if getattr(args, "debug", False) else ()))
        payload = {k: exc.payload[k] for k in shown if k in exc.payload}
        print(json.dumps(payload, indent=2))
        return 1
    finally:
        function.stop()
    print(json.dumps(result, indent=2))
    return 0


def _state_dir(args: argparse.Namespace) -> Path:
    from orderflow.local import STATE_DIR

    return Path(args.state_dir).resolve() if getattr(args, "state_dir", None) else STATE_DIR


def _local_suite_environment(state_dir: Path) -> dict[str, str]:
    """What a function needs to reach the running local suite's database and emulator."""
    state = read_state(state_dir)
    from orderflow import devauth, emulator

    return {
        "DATABASE_URL": state["database"],
        "AWS_ENDPOINT_URL": state["aws"],
        "AWS_REGION": emulator.REGION,
        "AWS_DEFAULT_REGION": emulator.REGION,
        **emulator.CREDENTIALS,
        "EVENT_BUS_NAME": state["bus"],
        "SENDER_EMAIL": state["sender"],
        "JWKS_URL": f"{state['api']}/.well-known/jwks.json",
        "JWT_ISSUER": devauth.ISSUER,
        "JWT_AUDIENCE": devauth.AUDIENCE,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def read_state(state_dir: Path) -> dict[str, Any]:
    """The running local suite's state file, or a clear error saying how to start one."""
    import json

    path = state_dir / "local.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise CommandError(
            f"no local suite is running from {state_dir}: start one with `./dev run` (orderflow local)"
        ) from None
    except ValueError:
        raise CommandError(f"{path} is not readable JSON: stop the suite and start it again") from None
    if "database" not in state:
        raise CommandError(f"{path} was written by an older orderflow local: restart the suite")
    return state


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
        consumer_concurrency=args.consumer_concurrency,
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
    if args.state_dir and not state_dir.is_dir():
        # A new key there would sign tokens no running suite accepts.
        print(
            f"orderflow token: no state folder {state_dir}: give the --state-dir the suite runs with",
            file=sys.stderr,
        )
        return 2
    print(devauth.token(state_dir, sub=args.sub, email=args.email, admin=args.admin))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from orderflow.demo import DemoError, run
    from orderflow.local import STATE_DIR

    state_dir = Path(args.state_dir).resolve() if args.state_dir else STATE_DIR
    try:
        return run(state_dir, api=args.api, aws=args.aws, timeout_s=args.timeout)
    except (DemoError, OSError) as exc:
        print(f"orderflow demo: {one_line(exc)} (is `orderflow local` running there?)", file=sys.stderr)
        return 1


def build_parser() -> Parser:
    """Every command, each flag taken before or after its subcommand (see orderflow.parser)."""
    from orderflow.ops.target import at_least_one

    parser = Parser(prog="orderflow", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and stack traces")
    sub = parser.add_subparsers(dest="command", required=True)

    migrate = sub.add_parser("migrate", help="apply every service's migrations to DATABASE_URL")
    migrate.add_argument(
        "--stack",
        help="a deployed stack's name: run its migration function inside AWS instead",
    )
    migrate.set_defaults(run=_migrate)
    schemas = sub.add_parser("schemas", help="regenerate event JSON Schemas and the OpenAPI document")
    schemas.add_argument("--check", action="store_true", help="fail if a checked-in file is stale")
    schemas.add_argument(
        "--breaking-since",
        metavar="REF",
        help="only compare: fail if the checked-in documents break a counterpart deployed from git REF",
    )
    schemas.set_defaults(run=_schemas)
    invoke = sub.add_parser(
        "invoke", help="run one function of template.yaml with an event file, as sam local invoke"
    )
    invoke.add_argument("function_id", metavar="FUNCTION_ID", help="logical id in template.yaml")
    invoke.add_argument("--event", "-e", required=True, help="event JSON file (- for stdin)")
    invoke.add_argument("--env-vars", "-n", help="JSON of environment overrides (sam's format)")
    invoke.add_argument("--template", "-t", help="default: .aws-sam/build/template.yaml if built")
    invoke.add_argument(
        "--local",
        action="store_true",
        help="use the running local suite's database, emulator and bus (from its state folder)",
    )
    invoke.add_argument("--state-dir", help="the state folder of the suite (default: .orderflow/)")
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
        help="seconds before a consumer's failed record is received again, for tests "
        "(default: the function's own backoff, else the queue's visibility timeout)",
    )
    local.add_argument(
        "--consumer-concurrency",
        type=at_least_one,
        default=1,
        metavar="N",
        help="containers per consumer, each taking its own batches, at most the template's "
        "MaximumConcurrency for it (default 1)",
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

    from orderflow.ops import dlq, journey, outbox, replay

    outbox.register(sub)
    dlq.register(sub)
    replay.register(sub)
    journey.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, not a traceback, unless asked for
        if args.debug:
            raise
        print(f"orderflow {args.command}: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
