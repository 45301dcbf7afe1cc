"""End-to-end: ``orderflow local`` refuses to start with one clear line, not a traceback.

No PostgreSQL is needed: the ports are checked first, and the unreachable database
is the point of the last test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.local_suite import free_ports


def run_local(
    *args: str, state_dir: Path, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "orderflow.cli", "local", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert lines[0].startswith("orderflow local: ")
    for text in expected:
        assert text in lines[0]


@pytest.mark.parametrize("flag", ["--port", "--aws-port"])
def test_a_taken_port_is_named_in_one_line(flag: str, tmp_path: Path) -> None:
    api, aws = free_ports(2)
    taken = api if flag == "--port" else aws
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        result = run_local("--port", str(api), "--aws-port", str(aws), state_dir=tmp_path)
    assert_one_clear_line(result, f"port {taken} is taken", flag)


def test_an_unreachable_postgresql_is_named_in_one_line(tmp_path: Path) -> None:
    api, aws, closed = free_ports(3)  # nothing listens on `closed`
    url = f"postgresql+pg8000://orderflow:secret-pw@127.0.0.1:{closed}/orderflow"
    result = run_local("--port", str(api), "--aws-port", str(aws), state_dir=tmp_path, database_url=url)
    assert_one_clear_line(result, "cannot reach PostgreSQL", f"127.0.0.1:{closed}")
    assert "secret-pw" not in result.stderr + result.stdout
