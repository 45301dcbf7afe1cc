"""The command line's parser: every command takes its flags after its subcommand as well as
before it, refuses an unknown flag with its own usage, and the CLI and the ops commands do
not import each other in a circle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from orderflow.cli import build_parser

# (command, flags given first, flags given last): the same command line, the flags moved.
# Each top-level command has a row (test_every_command_has_a_row keeps it so).
TABLE = [
    ("migrate", ["--debug", "migrate"], ["migrate", "--debug"]),
    ("schemas", ["--debug", "schemas", "--check"], ["schemas", "--check", "--debug"]),
    (
        "invoke",
        ["--debug", "invoke", "--local", "--state-dir", "S", "OrdersApiFunction", "-e", "ev.json"],
        ["invoke", "OrdersApiFunction", "-e", "ev.json", "--local", "--state-dir", "S", "--debug"],
    ),
    (
        "local",
        ["--debug", "local", "--port", "3001", "--state-dir", "S"],
        ["local", "--state-dir", "S", "--port", "3001", "--debug"],
    ),
    (
        "token",
        ["--debug", "token", "--sub", "c-1", "--admin"],
        ["token", "--admin", "--sub", "c-1", "--debug"],
    ),
    (
        "demo",
        ["--debug", "demo", "--timeout", "5", "--state-dir", "S"],
        ["demo", "--state-dir", "S", "--timeout", "5", "--debug"],
    ),
    (
        "outbox",
        ["--debug", "outbox", "--state-dir", "S", "status", "--json"],
        ["outbox", "status", "--json", "--state-dir", "S", "--debug"],
    ),
    (
        "outbox",
        ["outbox", "--state-dir", "S", "requeue", "--all"],
        ["outbox", "requeue", "--all", "--state-dir", "S"],
    ),
    (
        "outbox",
        ["outbox", "--state-dir", "S", "requeue", "3", "4"],
        ["outbox", "requeue", "3", "4", "--state-dir", "S"],
    ),
    ("dlq", ["--debug", "dlq", "--stack", "prod", "list"], ["dlq", "list", "--stack", "prod", "--debug"]),
    (
        "dlq",
        ["dlq", "--state-dir", "S", "show", "ShippingFunction", "--max", "2"],
        ["dlq", "show", "ShippingFunction", "--max", "2", "--state-dir", "S"],
    ),
    (
        "dlq",
        ["dlq", "--stack", "prod", "redrive", "ShippingFunction", "--dry-run"],
        ["dlq", "redrive", "--dry-run", "ShippingFunction", "--stack", "prod"],
    ),
    (
        "replay",
        [
            "--debug",
            "replay",
            "--stack",
            "prod",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-02T00:00:00Z",
        ],
        [
            "replay",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-02T00:00:00Z",
            "--stack",
            "prod",
            "--debug",
        ],
    ),
    (
        "journey",
        ["--debug", "journey", "--state-dir", "S", "136d4e4d"],
        ["journey", "136d4e4d", "--state-dir", "S", "--debug"],
    ),
]


@pytest.mark.parametrize(("command", "first", "last"), TABLE, ids=[" ".join(row[2]) for row in TABLE])
def test_flags_after_the_subcommand_mean_what_they_mean_before_it(
    command: str, first: list[str], last: list[str]
) -> None:
    before = vars(build_parser().parse_args(first))
    after = vars(build_parser().parse_args(last))
    assert before == after
    assert before["command"] == command
    assert before["debug"] is ("--debug" in first)
    if "--state-dir" in first:
        assert before["state_dir"] == "S"
    if "--stack" in first:
        assert before["stack"] == "prod"


def test_every_command_has_a_row() -> None:
    assert set(build_parser().subcommands.choices) == {row[0] for row in TABLE}


def test_a_flag_given_only_before_the_subcommand_is_kept() -> None:
    """The subcommand's copy of an inherited flag must not reset it to its default."""
    args = build_parser().parse_args(["dlq", "--stack", "prod", "--state-dir", "S", "list"])
    assert (args.stack, args.state_dir) == ("prod", "S")
    assert build_parser().parse_args(["outbox", "--state-dir", "S"]).state_dir == "S"


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["outbox", "status", "--bogus"], "usage: orderflow outbox status "),
        (["outbox", "--bogus", "status"], "usage: orderflow outbox "),
        (["dlq", "list", "--bogus"], "usage: orderflow dlq list "),
        (["journey", "abc", "--bogus"], "usage: orderflow journey "),
        (["demo", "--port", "3001"], "usage: orderflow demo "),
        (["migrate", "extra"], "usage: orderflow migrate "),
    ],
)
def test_an_unknown_flag_is_refused_with_the_command_s_usage(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage), err
    assert "error: unrecognized arguments:" in err


def test_the_ops_commands_do_not_import_the_cli() -> None:
    ops = Path(sys.modules["orderflow.cli"].__file__ or "").parent / "ops"
    for path in sorted(ops.glob("*.py")):
        imported = {
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module
        } | {
            alias.name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert "orderflow.cli" not in imported, path.name
