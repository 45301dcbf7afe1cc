"""End-to-end: the README's two commands in a fresh clone of this repository.

``git clone`` of HEAD into a new folder, then ``./dev test`` (the unit tests: CI
runs the whole suite from a clean clone already) and ``./dev run``, which must
print its ``ready`` line and carry an order through every service (``orderflow
demo``, run from the clone), keeping its data in the clone's git-ignored
``.orderflow/``.

One shortcut, to stay fast and offline: ``./dev`` would create ``.venv`` and install
requirements-dev.lock from PyPI (and tools/sam.lock into .venv-tools/sam). Instead the
clone gets a venv of its own whose third-party packages come from this venv (a ``.pth`` line), Orderflow
installed editable from the clone itself (``pip install --no-deps``), and the
stamp ``./dev`` writes after installing, so ``./dev`` finds it up to date. The
code that runs is the clone's; only the installation from PyPI is not exercised.
The embedded PostgreSQL is the clone's own, so this test carries no ``db`` marker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from orderflow.paths import ROOT
from tests.support.local_suite import LocalSuite, running

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and a git checkout"
)


def sh(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def venv_like_dev_makes(clone: Path) -> None:
    venv = clone / ".venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=clone)
    python = venv / "bin" / "python"
    site = sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=clone)
    (Path(site.stdout.strip()) / "_orderflow_parent_venv.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    sh(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", ".", cwd=clone)
    # What ./dev writes after its own install: the hash of pyproject.toml and the dev lock.
    installed = (clone / "pyproject.toml").read_bytes() + (clone / "requirements-dev.lock").read_bytes()
    stamp = hashlib.sha256(installed).hexdigest()
    (venv / ".dev-stamp").write_text(f"test {stamp}\n")
    # ./dev test also makes .venv-tools/sam (the unit tests do not run its tools).
    tools = clone / ".venv-tools" / "sam"
    sh(sys.executable, "-m", "venv", "--without-pip", tools, cwd=clone)
    tools_stamp = hashlib.sha256((clone / "tools" / "sam.lock").read_bytes()).hexdigest()
    (tools / ".dev-stamp").write_text(tools_stamp + "\n")


def test_the_readme_commands_work_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "orderflow"
    sh("git", "clone", "--quiet", ROOT, clone, cwd=tmp_path)
    venv_like_dev_makes(clone)
    where = sh(clone / ".venv/bin/python", "-c", "from orderflow.paths import ROOT; print(ROOT)", cwd=clone)
    assert where.stdout.strip() == str(clone), where.stdout  # the clone's code, not this checkout's

    tested = sh("./dev", "test", "-q", "-p", "no:cacheprovider", "tests/unit", cwd=clone)
    assert " passed" in tested.stdout and "==> installing" not in tested.stderr

    suite = LocalSuite(
        clone / ".orderflow",
        command=["./dev", "run"],
        cwd=clone,
        pass_state_dir=False,
        extra_args=("--relay-every", "1"),
    )
    with running(suite, timeout_s=90):
        demo = sh(clone / ".venv/bin/orderflow", "demo", "--timeout", "60", cwd=clone)
        assert "Summary: 4 orders, 3 shipping, 1 rejected, 4 confirmation emails" in demo.stdout, demo.stdout
        code, alive = suite.stop()
        assert code == 0, suite.log
        assert not alive, f"left running after SIGTERM: {alive}"

    assert (clone / ".orderflow" / "pgdata").is_dir()
    assert sh("git", "status", "--porcelain", cwd=clone).stdout == ""  # the data folder is ignored
