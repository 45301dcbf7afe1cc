"""The ``orderflow`` command."""

from __future__ import annotations

import argparse
import os
import sys


def _migrate(args: argparse.Namespace) -> int:
    from orderflow.migrate import migrate

    url = os.environ.get("DATABASE_URL")
    if not url:
        print("orderflow migrate: set DATABASE_URL (postgresql+pg8000://...)", file=sys.stderr)
        return 2
    try:
        for schema in migrate(url):
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


def _not_yet(name: str) -> int:
    print(f"orderflow {name}: not yet available (see the open issues)", file=sys.stderr)
    return 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orderflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply every service's migrations to DATABASE_URL").set_defaults(
        run=_migrate
    )
    schemas = sub.add_parser("schemas", help="regenerate event JSON Schemas and the OpenAPI document")
    schemas.add_argument("--check", action="store_true", help="fail if a checked-in file is stale")
    schemas.set_defaults(run=_schemas)
    for name, text in (
        ("local", "run the whole suite on this machine"),
        ("token", "print a token the local suite accepts"),
        ("invoke", "run one function of template.yaml with an event file"),
        ("demo", "place orders against a running local suite"),
    ):
        sub.add_parser(name, help=f"{text} (not yet)").set_defaults(run=lambda a, n=name: _not_yet(n))

    args, _ = parser.parse_known_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
