"""The three HTTP functions are wired one way: routes reach the database through their
service's ``handlers/wiring.py`` (the layer's ``common.wiring``), and domain errors become
responses through one table per service (``handlers/errors.py``), never by hand in a route."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import common.wiring

SERVICES = ["orders", "inventory", "shipping"]


def route_modules(service: str) -> list[Path]:
    handlers = Path(importlib.import_module(f"{service}.handlers").__file__ or "").parent
    return [handlers / "api.py", *sorted((handlers / "routes").glob("*.py"))]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_its_unit_of_work_through_the_layer(service: str) -> None:
    wiring = importlib.import_module(f"{service}.handlers.wiring")
    assert wiring.run is common.wiring.run
    unit = importlib.import_module(f"{service}.adapters.repository")
    factories = [c for _, c in inspect.getmembers(unit, inspect.isclass) if c.__name__.endswith("UnitOfWork")]
    assert inspect.getclosurevars(wiring.uow).nonlocals["factory"] in factories


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_maps_its_domain_errors_in_one_table(service: str) -> None:
    api = importlib.import_module(f"{service}.handlers.api")
    errors = importlib.import_module(f"{service}.handlers.errors")
    for error_type in errors.ERRORS:
        assert api.app.exception_handler_manager.lookup_exception_handler(error_type) is not None, error_type


@pytest.mark.parametrize("service", SERVICES)
def test_no_route_opens_a_connection_or_catches_a_domain_error_itself(service: str) -> None:
    domain_errors = set(importlib.import_module(f"{service}.handlers.errors").ERRORS)
    names = {e.__name__ for e in domain_errors}
    for path in route_modules(service):
        if not path.exists() or path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                imported = {alias.name for alias in node.names}
                assert "retry_on_disconnect" not in imported, path
                assert not any(n.endswith("UnitOfWork") for n in imported), path
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                assert not caught & names, (path, caught & names)
