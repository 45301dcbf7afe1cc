"""The breaking-change gate: the checked-in event schemas and OpenAPI document of the
working tree against the same files at a git ref (``orderflow schemas --breaking-since``).

Who reads what decides what breaks:

* An event is written by one deployment of its producer and read by consumers deployed
  before or after it: old consumers read new events, and new consumers read old events
  (in flight during a deploy, in the archive, in a DLQ being redriven). Each consumer
  validates the whole detail with its own copy of the model, so within version 1.0 a
  field's accepted values must not change in either direction: narrowed, old events fail
  new consumers; widened (an enum value or a null added, a bound relaxed), new events fail
  old consumers. A property removed (or renamed) breaks old consumers that read it; a new
  required one breaks new consumers reading old events. Only a new optional property,
  which old consumers ignore, is additive.
* A request is written by clients built against the old document and read by the new
  service: a constraint may be relaxed, never tightened; no new required field or
  parameter; nothing old clients send may disappear.
* A response is written by the new service and read by old clients: a property or a
  status may be added, never removed; values may narrow, never widen or change type; a
  property old clients could count on (required) must stay required.

The documents use a small part of JSON Schema (what pydantic generates): properties,
required, items, anyOf, $ref, enum/const, type, bounds, pattern, format. A keyword the
checker does not order (a pattern, a format, anything unfamiliar) counts as changed when
its value differs, so the gate errs on the side of refusing.

oasdiff, the maintained OpenAPI diff, is a Go program (no Python distribution) and does
not read the event schemas; the Python packages that diff schemas are young one-person
projects. Hence this small, table-tested checker.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

EVENT_SCHEMAS = "events/schemas"
OPENAPI = "openapi/orderflow-api.json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

Reader = Literal["event", "request", "response"]
Direction = Literal["narrower", "wider", "changed"]
# What each side may do to the values a schema accepts without breaking the other side.
ALLOWED: dict[Reader, set[Direction]] = {"event": set(), "request": {"wider"}, "response": {"narrower"}}

ANNOTATIONS = {
    "title",
    "description",
    "examples",
    "example",
    "default",
    "$comment",
    "$schema",
    "$id",
    "deprecated",
}
STRUCTURE = {"properties", "required", "items", "anyOf", "oneOf", "$ref", "$defs", "definitions"}
UPPER_BOUNDS = {"maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties"}
LOWER_BOUNDS = {"minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties"}


class GateError(Exception):
    """The comparison could not be made (an unknown ref, not a git repository)."""


@dataclass(frozen=True)
class Change:
    document: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.document}: {self.where}: {self.what}"


@dataclass(frozen=True)
class _Side:
    root: dict[str, Any]

    def resolve(self, node: Any) -> tuple[Any, str | None]:
        """``node`` with its local ``$ref`` chain followed, and the last reference taken."""
        ref = None
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"] not in seen:
            ref = node["$ref"]
            seen.add(ref)
            target: Any = self.root
            for part in ref.removeprefix("#/").split("/"):
                target = (
                    target.get(part.replace("~1", "/").replace("~0", "~"), {})
                    if isinstance(target, dict)
                    else {}
                )
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node, ref


def _bound(keyword: str, old: Any, new: Any) -> Direction:
    if old is None:
        return "narrower"
    if new is None:
        return "wider"
    tighter = new < old if keyword in UPPER_BOUNDS else new > old
    return "narrower" if tighter else "wider"


def _values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _set_direction(old: list[Any] | None, new: list[Any] | None) -> Direction | None:
    """How the set of allowed values moved (None: unrestricted)."""
    if old is None and new is None:
        return None
    if old is None:
        return "narrower"
    if new is None:
        return "wider"
    olds, news = {json.dumps(v, sort_keys=True) for v in old}, {json.dumps(v, sort_keys=True) for v in new}
    if olds == news:
        return None
    if news < olds:
        return "narrower"
    if news > olds:
        return "wider"
    return "changed"


def _types(node: dict[str, Any]) -> list[str] | None:
    t = node.get("type")
    return [t] if isinstance(t, str) else (list(t) if isinstance(t, list) else None)


def _alternatives(side: _Side, node: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas a value may match (pydantic writes ``X | None`` as anyOf)."""
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            out = []
            for alternative in node[key]:
                resolved, _ = side.resolve(alternative)
                out.extend(_alternatives(side, resolved) if isinstance(resolved, dict) else [{}])
            return out
    return [node]


def _key(node: dict[str, Any]) -> str:
    types = _types(node)
    return ",".join(sorted(types)) if types else "any"


class _Comparison:
    def __init__(self, document: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.document = document
        self.old, self.new = _Side(old), _Side(new)
        self.changes: list[Change] = []

    def add(self, where: str, what: str) -> None:
        self.changes.append(Change(self.document, where, what))

    def moved(self, reader: Reader, where: str, direction: Direction, what: str) -> None:
        if direction not in ALLOWED[reader]:
            self.add(where, f"{what} ({direction})")

    def schema(
        self, old: Any, new: Any, where: str, reader: Reader, refs: frozenset[tuple[Any, Any]] = frozenset()
    ) -> None:
        old, old_ref = self.old.resolve(old)
        new, new_ref = self.new.resolve(new)
        if (old_ref, new_ref) in refs and old_ref is not None:
            return  # a recursive schema: this pair is being compared further up
        refs = refs | {(old_ref, new_ref)}
        if not isinstance(old, dict) or not isinstance(new, dict):
            if old != new:
                self.moved(reader, where, "wider" if new in (True, {}) else "changed", "schema changed")
            return

        olds, news = _alternatives(self.old, old), _alternatives(self.new, new)
        if len(olds) > 1 or len(news) > 1:
            self._alternatives(olds, news, where, reader, refs)
            return

        old_types, new_types = _types(old), _types(new)
        if old_types != new_types:
            were, are = set(old_types or []), set(new_types or [])
            direction: Direction = (
                "wider"
                if new_types is None or (old_types is not None and are > were)
                else "narrower"
                if old_types is None or are < were
                else "changed"
            )
            self.moved(reader, where, direction, f"type {old_types or 'any'} -> {new_types or 'any'}")

        moved = _set_direction(_values(old), _values(new))
        if moved:
            self.moved(reader, where, moved, f"allowed values {_values(old)} -> {_values(new)}")

        for keyword in sorted((set(old) | set(new)) - ANNOTATIONS - STRUCTURE - {"type", "enum", "const"}):
            if keyword.startswith("x-") or old.get(keyword) == new.get(keyword):
                continue
            o, n = old.get(keyword), new.get(keyword)
            if keyword in UPPER_BOUNDS | LOWER_BOUNDS:
                self.moved(reader, where, _bound(keyword, o, n), f"{keyword} {o} -> {n}")
            elif keyword == "additionalProperties" and o in (None, True) and n is False:
                self.moved(reader, where, "narrower", "additional properties now refused")
            elif keyword == "additionalProperties" and o is False and n in (None, True):
                self.moved(reader, where, "wider", "additional properties now allowed")
            elif keyword == "additionalProperties" and isinstance(o, dict) and isinstance(n, dict):
                self.schema(o, n, f"{where}.*", reader, refs)
            elif o is None:
                self.moved(reader, where, "narrower", f"{keyword} {n!r} added")
            elif n is None:
                self.moved(reader, where, "wider", f"{keyword} {o!r} removed")
            else:
                self.moved(reader, where, "changed", f"{keyword} {o!r} -> {n!r}")

        if "items" in old or "items" in new:
            self.schema(old.get("items", {}), new.get("items", {}), f"{where}[]", reader, refs)
        self._properties(old, new, where, reader, refs)

    def _alternatives(
        self,
        olds: list[dict[str, Any]],
        news: list[dict[str, Any]],
        where: str,
        reader: Reader,
        refs: frozenset[tuple[Any, Any]],
    ) -> None:
        old_by, new_by = {_key(a): a for a in olds}, {_key(a): a for a in news}
        if len(old_by) != len(olds) or len(new_by) != len(news):
            if olds != news:  # two alternatives of one type: no way to pair them, so any edit counts
                self.moved(reader, where, "changed", "alternatives changed")
            return
        for key in sorted(old_by.keys() - new_by.keys()):
            self.moved(reader, where, "narrower", f"{key} no longer allowed")
        for key in sorted(new_by.keys() - old_by.keys()):
            self.moved(reader, where, "wider", f"{key} now allowed")
        for key in sorted(old_by.keys() & new_by.keys()):
            self.schema(old_by[key], new_by[key], where, reader, refs)

    def _properties(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        where: str,
        reader: Reader,
        refs: frozenset[tuple[Any, Any]],
    ) -> None:
        old_props, new_props = old.get("properties") or {}, new.get("properties") or {}
        old_required, new_required = set(old.get("required") or []), set(new.get("required") or [])
        for name in old_props:
            at = f"{where}.{name}"
            if name not in new_props:
                # Readers of events and responses relied on it; a request's sender still sends it.
                self.add(at, "property removed")
                continue
            if name in new_required and name not in old_required and reader != "response":
                self.add(at, "now required")
            if name in old_required and name not in new_required and reader != "request":
                self.add(at, "no longer required")
            self.schema(old_props[name], new_props[name], at, reader, refs)
        for name in new_props.keys() - old_props.keys():
            if name in new_required and reader != "response":
                self.add(f"{where}.{name}", "new required property")


def compare_event(document: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What in ``new`` would break a consumer or producer of ``old`` (an event's detail schema)."""
    comparison = _Comparison(document, old, new)
    for routing in ("x-source", "x-detail-type"):
        if old.get(routing) != new.get(routing):
            comparison.add(routing, f"{old.get(routing)!r} -> {new.get(routing)!r}")
    comparison.schema(old, new, "detail", "event")
    return comparison.changes


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                yield path, method, item[method]


def _parameters(
    side: _Side, path_item: dict[str, Any], operation: dict[str, Any]
) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for parameter in [*(path_item.get("parameters") or []), *(operation.get("parameters") or [])]:
        resolved, _ = side.resolve(parameter)
        found[(resolved.get("in", ""), resolved.get("name", ""))] = resolved
    return found


def compare_openapi(document: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What in ``new`` would break a client built against ``old``."""
    c = _Comparison(document, old, new)
    new_operations = {(path, method): op for path, method, op in _operations(new)}
    for path, method, old_op in _operations(old):
        name = f"{method.upper()} {path}"
        new_op = new_operations.get((path, method))
        if new_op is None:
            c.add(name, "operation removed")
            continue
        old_params = _parameters(c.old, old["paths"][path], old_op)
        new_params = _parameters(c.new, new["paths"][path], new_op)
        for (where, pname), parameter in old_params.items():
            at = f"{name} {where} parameter {pname}"
            if (where, pname) not in new_params:
                c.add(at, "parameter removed")
                continue
            if new_params[(where, pname)].get("required") and not parameter.get("required"):
                c.add(at, "now required")
            c.schema(parameter.get("schema", {}), new_params[(where, pname)].get("schema", {}), at, "request")
        for key in new_params.keys() - old_params.keys():
            if new_params[key].get("required"):
                c.add(f"{name} {key[0]} parameter {key[1]}", "new required parameter")

        old_body, _ = c.old.resolve(old_op.get("requestBody") or {})
        new_body, _ = c.new.resolve(new_op.get("requestBody") or {})
        if old_op.get("requestBody") and not new_op.get("requestBody"):
            c.add(f"{name} request body", "request body removed")
        elif new_body.get("required") and not old_body.get("required"):
            c.add(f"{name} request body", "request body now required")
        for media, content in (old_body.get("content") or {}).items():
            new_content = (new_body.get("content") or {}).get(media)
            if new_content is None:
                if new_op.get("requestBody"):
                    c.add(f"{name} request body", f"{media} no longer accepted")
                continue
            c.schema(
                content.get("schema", {}), new_content.get("schema", {}), f"{name} request body", "request"
            )

        new_responses = new_op.get("responses") or {}
        for status, response in (old_op.get("responses") or {}).items():
            if str(status) not in {str(s) for s in new_responses}:
                c.add(name, f"status {status} removed")
                continue
            old_response, _ = c.old.resolve(response)
            new_response, _ = c.new.resolve(new_responses[status])
            for media, content in (old_response.get("content") or {}).items():
                at = f"{name} {status} response"
                new_content = (new_response.get("content") or {}).get(media)
                if new_content is None:
                    c.add(at, f"{media} body removed")
                    continue
                c.schema(content.get("schema", {}), new_content.get("schema", {}), at, "response")
    return c.changes


def _git(repo: Path, *args: str) -> str:
    try:
        # git from PATH, as a developer runs it; the arguments are ours, the ref one argument.
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GateError(f"git {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise GateError(
            done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"git {args[0]} failed"
        )
    return done.stdout


def documents_at(repo: Path, ref: str) -> dict[str, dict[str, Any]]:
    """The event schemas and the OpenAPI document as committed at ``ref``."""
    if ref.startswith("-"):
        raise GateError(f"{ref} is not a git ref")  # never an option to git
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GateError as exc:
        raise GateError(f"{ref} is not a commit in {repo} (a shallow clone lacks older commits)") from exc
    names = _git(repo, "ls-tree", "-r", "--name-only", commit, "--", EVENT_SCHEMAS, OPENAPI).split()
    return {
        name: json.loads(_git(repo, "show", f"{commit}:{name}"))
        for name in names
        if name == OPENAPI
        or (name.startswith(f"{EVENT_SCHEMAS}/") and name.endswith(".json") and name.count("/") == 2)
    }


def documents_now(repo: Path) -> dict[str, dict[str, Any]]:
    paths = [*sorted((repo / EVENT_SCHEMAS).glob("*.json")), repo / OPENAPI]
    return {str(p.relative_to(repo)): json.loads(p.read_text()) for p in paths if p.exists()}


def breaking_changes(repo: Path, ref: str) -> list[Change]:
    """Every change from ``ref`` to the working tree that would break a deployed counterpart."""
    before, after = documents_at(repo, ref), documents_now(repo)
    changes: list[Change] = []
    for name, old in sorted(before.items()):
        new = after.get(name)
        if new is None:
            changes.append(Change(name, "document", "removed"))
        elif name == OPENAPI:
            changes += compare_openapi(name, old, new)
        else:
            changes += compare_event(name, old, new)
    return changes
