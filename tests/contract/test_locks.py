"""The locks agree with the ranges they were compiled from (``make lock`` refreshes both).

* services/common/requirements.lock: the layer, from services/common/requirements.txt.
* requirements-dev.lock: the development environment ``./dev`` installs (with
  ``--require-hashes``), from pyproject.toml's dependencies and its dev extras; universal,
  so one entry may be pinned twice under different markers (a package that dropped
  Python 3.11 in its newest release). Every package it shares with the layer is pinned
  to the layer's version: the tests run what ships.
* requirements-run.lock: what ``./dev run`` installs, the runtime dependencies and the
  ``local`` extra, each pinned as in the development lock (a subset of it).
* tools/*.lock: the tools that cap a package the layer ships (aws-sam-cli, cfn-lint,
  checkov), each in an environment of its own, so none of them is in the other locks.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
COMMON = ROOT / "services/common"
LAYER_LOCK = COMMON / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
RUN_LOCK = ROOT / "requirements-run.lock"
TOOL_LOCKS = {"sam": {"aws-sam-cli", "cfn-lint"}, "checkov": {"checkov"}}
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*(?:\\|$)")
# Where the development environment must install: the Pythons pyproject.toml supports
# that CI and the machines here run.
DEV_PYTHONS = ("3.11", "3.12", "3.13")
FIX = "run make lock"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: Marker | None
    entry: str  # the lock's whole entry: the pin, its hashes, its "via" comments

    def applies(self, python: str) -> bool:
        env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux"}
        env |= {"platform_system": "Linux", "implementation_name": "cpython"}
        env |= {"platform_python_implementation": "CPython", "platform_machine": "x86_64"}
        return self.marker is None or self.marker.evaluate(env)


def _ranges(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def _pyproject_ranges(extra: str = "dev") -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"][extra]]
    return [Requirement(line) for line in lines]


def _locked(path: Path) -> list[Pin]:
    """Every entry of a lock: a pin at the start of a line, and the indented lines after it."""
    pins = []
    for entry in re.split(r"\n(?=\S)", path.read_text()):
        match = PIN.match(entry)
        if match:
            marker = Marker(match[3]) if match[3] else None
            pins.append(Pin(canonicalize_name(match[1]), match[2], marker, entry))
    return pins


def _pins(path: Path) -> dict[str, str]:
    return {pin.name: pin.version for pin in _locked(path)}


# --- the layer's lock ----------------------------------------------------------------------


def test_every_layer_pin_carries_hashes():
    pins = _locked(LAYER_LOCK)
    assert pins
    for pin in pins:
        assert "--hash=sha256:" in pin.entry, pin.entry.splitlines()[0]


def test_the_layer_lock_satisfies_every_range_of_requirements_txt():
    pins = _pins(LAYER_LOCK)
    for requirement in _ranges(COMMON / "requirements.txt"):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not locked: {FIX}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside {requirement.specifier}: {FIX}"
        )


def test_the_layer_lock_satisfies_pyprojects_runtime_ranges():
    pins = _pins(LAYER_LOCK)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in pins:  # the CLI's own packages (alembic, ...) are not in the layer
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{name}=={pins[name]} is outside pyproject's {requirement.specifier}: {FIX}"
            )


# --- the development lock ------------------------------------------------------------------


def test_every_dev_pin_carries_hashes():
    pins = _locked(DEV_LOCK)
    assert len(pins) > 50, "requirements-dev.lock looks truncated"
    for pin in pins:
        assert "--hash=sha256:" in pin.entry, pin.entry.splitlines()[0]


def test_every_pin_of_the_dev_lock_satisfies_pyprojects_ranges():
    """Runtime dependencies and dev extras alike, under every marker the lock pins them."""
    pins = _locked(DEV_LOCK)
    for requirement in _pyproject_ranges():
        name = canonicalize_name(requirement.name)
        versions = [pin.version for pin in pins if pin.name == name]
        assert versions, f"{name} (pyproject.toml) is not in requirements-dev.lock: {FIX}"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{name}=={version} in requirements-dev.lock is outside pyproject's "
                f"{requirement.specifier}: {FIX}"
            )


def test_the_dev_lock_was_compiled_from_pyprojects_requirements_and_no_others():
    """A requirement dropped from (or renamed in) pyproject.toml leaves no stale direct pin."""
    direct = {pin.name for pin in _locked(DEV_LOCK) if "orderflow (pyproject.toml)" in pin.entry}
    assert direct == {canonicalize_name(r.name) for r in _pyproject_ranges()}, FIX


@pytest.mark.parametrize("python", DEV_PYTHONS)
def test_the_dev_lock_pins_one_version_of_each_package_on_linux(python: str):
    """On each supported Python, every locked package resolves to exactly one pin."""
    chosen: dict[str, list[str]] = {}
    for pin in _locked(DEV_LOCK):
        if pin.applies(python):
            chosen.setdefault(pin.name, []).append(pin.version)
    doubles = {name: versions for name, versions in chosen.items() if len(versions) > 1}
    assert not doubles, doubles
    missing = {canonicalize_name(r.name) for r in _pyproject_ranges()} - set(chosen)
    assert not missing, f"no pin for Python {python}: {sorted(missing)}; {FIX}"


def test_the_dev_lock_pins_every_package_the_layer_ships_at_the_layers_version():
    """The tests import what the functions import on Lambda, version for version."""
    layer = _pins(LAYER_LOCK)
    for pin in _locked(DEV_LOCK):
        if pin.name in layer:
            assert pin.version == layer[pin.name], (
                f"{pin.name}: requirements-dev.lock pins {pin.version}, the layer ships "
                f"{layer[pin.name]}: {FIX}"
            )


def test_no_tool_with_caps_of_its_own_is_in_the_dev_or_run_lock():
    # cfn-lint itself caps nothing without aws-sam-translator (moto's server extra brings it)
    capped = {"aws-sam-cli", "aws-sam-translator", "checkov"}
    for lock in (DEV_LOCK, RUN_LOCK):
        assert not capped & set(_pins(lock)), f"{lock.name}: {sorted(capped & set(_pins(lock)))}"


# --- the run lock --------------------------------------------------------------------------


def test_every_run_pin_carries_hashes_and_is_the_dev_locks_pin():
    dev = _locked(DEV_LOCK)
    pins = _locked(RUN_LOCK)
    assert len(pins) > 20, "requirements-run.lock looks truncated"
    for pin in pins:
        assert "--hash=sha256:" in pin.entry, pin.entry.splitlines()[0]
        named = [p for p in dev if p.name == pin.name]
        # The same marker where the dev lock has one; else its one version of the package (a
        # run pin's marker may be narrower: the dev lock's larger graph needs cffi on PyPy too).
        same = [p.version for p in named if p.marker == pin.marker] or sorted({p.version for p in named})
        assert same == [pin.version], f"{pin.name}=={pin.version} ({pin.marker}) vs dev {same}: {FIX}"


def test_the_run_lock_was_compiled_from_the_runtime_and_local_ranges():
    ranges = _pyproject_ranges("local")
    direct = {pin.name for pin in _locked(RUN_LOCK) if "orderflow (pyproject.toml)" in pin.entry}
    assert direct == {canonicalize_name(r.name) for r in ranges}, FIX
    pins = _pins(RUN_LOCK)
    for requirement in ranges:
        name = canonicalize_name(requirement.name)
        assert requirement.specifier.contains(pins[name], prereleases=True), FIX


def test_the_local_extra_is_part_of_the_dev_extra():
    """./dev run's environment is a subset of ./dev test's: one .venv serves both."""
    dev = {canonicalize_name(r.name): r for r in _pyproject_ranges("dev")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["optional-dependencies"]["local"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name == "moto":
            assert dev[name].specifier == requirement.specifier
            assert requirement.extras <= dev[name].extras
        else:  # flask and flask-cors: moto's server extra (in dev) brings them
            assert name in _pins(DEV_LOCK), name


# --- the tools' locks ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOOL_LOCKS))
def test_each_tool_lock_is_hashed_and_holds_its_tools(name: str):
    pins = _locked(ROOT / "tools" / f"{name}.lock")
    for pin in pins:
        assert "--hash=sha256:" in pin.entry, pin.entry.splitlines()[0]
    direct = {pin.name for pin in pins if f"-r {name}.txt" in pin.entry}
    assert direct == TOOL_LOCKS[name], FIX


def test_the_migration_functions_alembic_is_the_dev_locks():
    """services/migrator/requirements.lock: what MigrationFunction ships beside the layer."""
    dev = _pins(DEV_LOCK)
    pins = _locked(COMMON.parent / "migrator" / "requirements.lock")
    assert {pin.name for pin in pins} == {"alembic", "mako", "markupsafe"}, FIX
    for pin in pins:
        assert "--hash=sha256:" in pin.entry and pin.version == dev[pin.name], (pin.name, FIX)
