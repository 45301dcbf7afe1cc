"""End-to-end: the command line misused as a newcomer would, each case one exit code
and one line (argparse's usage plus its error line for parse errors, which is the
convention every command-line tool follows).

No suite runs: "suite not running" is the point of some cases, and a closed loopback
port stands in for a bad URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.local_suite import free_ports

(CLOSED,) = free_ports(1)
NOWHERE = f"http://127.0.0.1:{CLOSED}"

# (arguments, exit code, what the error line must say)
CASES = [
    # unknown flags: refused by the command itself, with its own usage
    (["demo", "--port", "3001"], 2, "orderflow demo: error: unrecognized arguments: --port 3001"),
    (["token", "--sub", "x", "--bogus"], 2, "orderflow token: error: unrecognized arguments: --bogus"),
    (["schemas", "--bogus"], 2, "orderflow schemas: error: unrecognized arguments: --bogus"),
    (["local", "--bogus"], 2, "orderflow local: error: unrecognized arguments: --bogus"),
    (["migrate", "--bogus"], 2, "orderflow migrate: error: unrecognized arguments: --bogus"),
    (["bogus"], 2, "invalid choice: 'bogus'"),
    # missing arguments
    (["token"], 2, "the following arguments are required: --sub"),
    (["invoke", "OrdersApiFunction"], 2, "the following arguments are required: --event/-e"),
    ([], 2, "the following arguments are required: command"),
    # the suite is not running
    (["demo", "--state-dir", "{state}"], 1, "start it with `./dev run`"),
    (
        ["invoke", "--local", "--state-dir", "{state}", "OrdersApiFunction", "-e", "{event}"],
        1,
        "no local suite is running from",
    ),
    (["token", "--sub", "x", "--state-dir", "{missing}"], 2, "no state folder"),
    # bad URLs
    (["demo", "--api", NOWHERE, "--aws", NOWHERE], 1, "orderflow demo: cannot connect: Connection refused"),
    (["migrate"], 1, "orderflow migrate: "),  # DATABASE_URL points at a closed port (below)
    # an unknown function
    (
        ["invoke", "NopeFunction", "-e", "{event}"],
        2,
        "orderflow invoke: no function 'NopeFunction' in template.yaml (functions: ",
    ),
    (["invoke", "OrdersApiFunction", "-e", "{missing}"], 2, "orderflow invoke: cannot read event"),
]


@pytest.mark.parametrize(("args", "code", "says"), CASES, ids=[" ".join(c[0]) or "(none)" for c in CASES])
def test_misuse_is_one_line_and_an_exit_code(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    event = Path("events/OrdersApiFunction/get-order.json").resolve()
    filled = [a.format(state=tmp_path, missing=tmp_path / "missing", event=event) for a in args]
    env = {**os.environ, "DATABASE_URL": f"postgresql+pg8000://postgres@127.0.0.1:{CLOSED}/nothing"}
    result = subprocess.run(
        [sys.executable, "-m", "orderflow.cli", *filled],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("usage:", " "))]
    assert len(errors) == 1, result.stderr
    assert says in errors[0], result.stderr
    for noise in ("Traceback", "Background on this error", "<urlopen error", '"'):
        assert noise not in errors[0], result.stderr
    if code == 2 and "error:" in errors[0]:  # argparse: the command's usage comes with it
        assert result.stderr.startswith("usage: orderflow"), result.stderr
