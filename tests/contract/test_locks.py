"""The layer's lock agrees with the ranges it was compiled from (``make lock`` refreshes it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
COMMON = ROOT / "services/common"
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _ranges(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_layer_pin_carries_hashes():
    text = (COMMON / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for entry in entries:
        if PIN.match(entry):
            assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_layer_lock_satisfies_every_range_of_requirements_txt():
    pins = _pins(COMMON / "requirements.lock")
    for requirement in _ranges(COMMON / "requirements.txt"):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not locked: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside {requirement.specifier}: run make lock"
        )


def test_the_layer_lock_satisfies_pyprojects_runtime_ranges():
    pins = _pins(COMMON / "requirements.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in pins:  # the CLI's own packages (alembic, ...) are not in the layer
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{name}=={pins[name]} is outside pyproject's {requirement.specifier}: run make lock"
            )
