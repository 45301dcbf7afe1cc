"""``orderflow outbox``: the transactional outbox's backlog, and requeueing parked rows.

Works against a deployed stack (``--stack NAME``, or ``ORDERFLOW_STACK``, with
``DATABASE_URL`` to its database, e.g. through a tunnel: the database sits in the stack's
private subnets) and a running local suite alike (``DATABASE_URL`` when set, else the
suite's database, from ``.orderflow/local.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


class OutboxCommandError(RuntimeError):
    """A one-line error for the user."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "outbox",
        help="unpublished and parked outbox rows per service; requeue parked rows",
        description="Show the outbox's backlog per service (default), or give parked rows back to the relay.",
    )
    parser.add_argument(
        "--stack",
        default=os.environ.get("ORDERFLOW_STACK"),
        help="a deployed stack's name: its database is DATABASE_URL's (default: the local suite)",
    )
    parser.add_argument("--state-dir", help="the local suite's state folder (default: .orderflow/)")
    actions = parser.add_subparsers(dest="action", metavar="{status,requeue}")
    status = actions.add_parser(
        "status", help="rows still to publish and parked rows per service, oldest age"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    requeue = actions.add_parser("requeue", help="give parked rows back to the relay")
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every parked row")
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="outbox row ids")
    parser.set_defaults(run=run, action=None, json=False)


def run(args: argparse.Namespace) -> int:
    try:
        url = database_url(args.state_dir, args.stack)
        if args.action == "requeue":
            return _requeue(url, args)
        return _status(url, bool(args.json))
    except OutboxCommandError as exc:
        print(f"orderflow outbox: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a database that is down, a wrong URL: one line, not a traceback
        if "42P01" in str(exc):
            print(
                "orderflow outbox: no eventing.outbox table: run `orderflow migrate` first", file=sys.stderr
            )
            return 1
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"orderflow outbox: {type(exc).__name__}: {first[:300]}", file=sys.stderr)
        return 1


def database_url(state_dir: str | None, stack: str | None = None) -> str:
    """``DATABASE_URL``, else the running local suite's database; with ``stack``, only
    ``DATABASE_URL`` (never the local suite's by mistake)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    if stack:
        raise OutboxCommandError(
            f"set DATABASE_URL to stack {stack}'s database (postgresql+pg8000://..., e.g. through "
            "a tunnel to its RDS Proxy) to read its outbox"
        )
    from orderflow.local import STATE_DIR

    state_file = (Path(state_dir).resolve() if state_dir else STATE_DIR) / "local.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        raise OutboxCommandError(
            f"set DATABASE_URL, or start the local suite (`orderflow local`): no {state_file}"
        ) from None
    if not state.get("database"):
        raise OutboxCommandError(
            f"{state_file} names no database: restart `orderflow local`, or set DATABASE_URL"
        )
    return str(state["database"])


def _engine(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url, pool_size=1, max_overflow=0, hide_parameters=True)


def _status(url: str, as_json: bool) -> int:
    from common.outbox.admin import health_by_source, parked_rows

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            per_source = health_by_source(conn)
            parked = parked_rows(conn)
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps({"services": per_source, "parked": parked}, default=str, indent=2))
        return 0
    if not per_source:
        print("outbox: every row is published")
        return 0
    print(f"{'service':<22} {'unpublished':>11} {'parked':>7} {'oldest':>10}")
    for row in per_source:
        print(
            f"{row['source']:<22} {row['unpublished']:>11} {row['parked']:>7} {_age(row['oldest_age_s']):>10}"
        )
    if parked:
        print("\nparked (requeue with `orderflow outbox requeue ID ...` or `--all`):")
        for p in parked:
            print(f"  {p['id']:>8}  {p['source']}/{p['detail_type']}  {p['parked_reason']}")
    return 0


def _requeue(url: str, args: argparse.Namespace) -> int:
    from common.outbox.admin import requeue_parked

    if not args.all and not args.ids:
        raise OutboxCommandError("name the parked rows to requeue (IDs), or --all")
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            done = requeue_parked(conn, None if args.all else args.ids)
    finally:
        engine.dispose()
    missing = sorted(set(args.ids) - set(done))
    print(f"requeued {len(done)} row(s){': ' + ', '.join(map(str, done)) if done else ''}")
    if missing:
        print(f"orderflow outbox: not parked (or unknown): {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    return 0


def _age(seconds: Any) -> str:
    s = float(seconds or 0)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"
