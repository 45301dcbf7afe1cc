"""The breaking-change gate (``orderflow schemas --breaking-since REF``).

Table tests edit copies of the checked-in documents; the git tests build a temporary
repository with a commit of the documents and an edited working tree, and run the
command as CI does.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.consumer import parse_event
from common.events import OrderCreated
from orderflow.breaking import EVENT_SCHEMAS, OPENAPI, breaking_changes, compare_event, compare_openapi
from orderflow.paths import ROOT

Edit = Callable[[dict[str, Any]], None]


def _load(name: str) -> dict[str, Any]:
    return json.loads((ROOT / name).read_text())


ORDER_CREATED = f"{EVENT_SCHEMAS}/OrderCreated.json"


def _defs(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["$defs"]


def _components(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"]


def _del(mapping: dict[str, Any], key: str, required: bool = True) -> None:
    del mapping["properties"][key]
    if required:
        mapping["required"].remove(key)


def _add(mapping: dict[str, Any], key: str, schema: dict[str, Any], required: bool) -> None:
    mapping["properties"][key] = schema
    if required:
        mapping["required"].append(key)


# (what changes, the edit, the finding expected; None: it passes)
EVENT_CHANGES: list[tuple[str, Edit, str | None]] = [
    ("unchanged", lambda d: None, None),
    (
        "a title and a description",
        lambda d: d["properties"]["total"].update(title="T", description="why"),
        None,
    ),
    ("an optional field added", lambda d: _add(d, "giftNote", {"type": "string"}, required=False), None),
    (
        "an optional metadata field",
        lambda d: _add(_defs(d)["EventMetadata"], "tenant", {"type": "string"}, False),
        None,
    ),
    (
        "a required field removed",
        lambda d: _del(d, "customerEmail"),
        "detail.customerEmail: property removed",
    ),
    (
        "an optional field removed",
        lambda d: _del(_defs(d)["ShippingAddress"], "line2", required=False),
        "detail.shippingAddress.line2: property removed",
    ),
    (
        "a field renamed",
        lambda d: d["properties"].update(grandTotal=d["properties"].pop("total")),
        "detail.total: property removed",
    ),
    (
        "a new required field",
        lambda d: _add(d, "channel", {"type": "string"}, required=True),
        "detail.channel: new required property",
    ),
    (
        "an optional field made required",
        lambda d: _defs(d)["ShippingAddress"]["required"].append("line2"),
        "detail.shippingAddress.line2: now required",
    ),
    (
        "a required field made optional",
        lambda d: d["required"].remove("total"),
        "detail.total: no longer required",
    ),
    (
        "retyped",
        lambda d: d["properties"]["total"].update(type="number"),
        "detail.total: type ['string'] -> ['number']",
    ),
    (
        "a pattern tightened",
        lambda d: d["properties"]["total"].update(pattern="^[0-9]{1,9}\\.[0-9]{2}$"),
        "detail.total: pattern",
    ),
    (
        "a bound tightened",
        lambda d: _defs(d)["OrderCreatedItem"]["properties"]["quantity"].update(maximum=100),
        "detail.items[].quantity: maximum 1000 -> 100 (narrower)",
    ),
    (
        "a bound relaxed (old consumers refuse the new values)",
        lambda d: _defs(d)["OrderCreatedItem"]["properties"]["quantity"].update(maximum=5000),
        "detail.items[].quantity: maximum 1000 -> 5000 (wider)",
    ),
    (
        "a null allowed",
        lambda d: d["properties"].update(total={"anyOf": [d["properties"]["total"], {"type": "null"}]}),
        "detail.total: null now allowed (wider)",
    ),
    (
        "a version value changed",
        lambda d: _defs(d)["EventMetadata"]["properties"]["version"].update(const="2.0"),
        "detail.metadata.version: allowed values ['1.0'] -> ['2.0'] (changed)",
    ),
    ("the source changed", lambda d: d.update({"x-source": "shop.service"}), "x-source"),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [c[1:] for c in EVENT_CHANGES], ids=[c[0] for c in EVENT_CHANGES]
)
def test_event_schema_changes(edit: Edit, expected: str | None) -> None:
    old = _load(ORDER_CREATED)
    new = copy.deepcopy(old)
    edit(new)

    found = [str(c) for c in compare_event(ORDER_CREATED, old, new)]

    if expected is None:
        assert found == []
    else:
        assert any(f.startswith(f"{ORDER_CREATED}: {expected}") for f in found), found


def _cancel(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["paths"]["/orders/{orderId}/cancel"]["post"]


def _limit(doc: dict[str, Any]) -> dict[str, Any]:
    (limit,) = [p for p in doc["paths"]["/orders"]["get"]["parameters"] if p["name"] == "limit"]
    return limit["schema"]


API_CHANGES: list[tuple[str, Edit, str | None]] = [
    ("unchanged", lambda d: None, None),
    (
        "a response property added",
        lambda d: _add(_components(d)["OrderOut"], "note", {"type": "string"}, True),
        None,
    ),
    (
        "an optional request field added",
        lambda d: _add(_components(d)["PlaceOrderRequest"], "note", {"type": "string"}, required=False),
        None,
    ),
    ("a status added", lambda d: _cancel(d)["responses"].update({"429": {"description": "slow down"}}), None),
    ("a request bound relaxed", lambda d: _limit(d).update(maximum=500), None),
    (
        "an optional request body made required",
        lambda d: _cancel(d)["requestBody"].update(required=True),
        "POST /orders/{orderId}/cancel request body: request body now required",
    ),
    (
        "a request body made optional",
        lambda d: d["paths"]["/orders"]["post"]["requestBody"].update(required=False),
        None,
    ),
    (
        "a response property removed",
        lambda d: _del(_components(d)["OrderOut"], "correlationId"),
        "GET /orders/{orderId} 200 response.correlationId: property removed",
    ),
    (
        "a response property retyped",
        lambda d: _components(d)["StockOut"]["properties"]["onHand"].update(type="string"),
        "GET /inventory/{sku} 200 response.onHand: type ['integer'] -> ['string'] (changed)",
    ),
    (
        "a response value widened",
        lambda d: _components(d)["OrderOut"]["properties"]["total"].pop("pattern"),
        "GET /orders/{orderId} 200 response.total: pattern",
    ),
    (
        "a new required request field",
        lambda d: _add(_components(d)["PlaceOrderRequest"], "channel", {"type": "string"}, required=True),
        "POST /orders request body.channel: new required property",
    ),
    (
        "a request constraint tightened",
        lambda d: _limit(d).update(maximum=50),
        "GET /orders query parameter limit: maximum 100 -> 50 (narrower)",
    ),
    (
        "a new required parameter",
        lambda d: d["paths"]["/products"]["get"]["parameters"].append(
            {"name": "region", "in": "query", "required": True, "schema": {"type": "string"}}
        ),
        "GET /products query parameter region: new required parameter",
    ),
    (
        "an operation removed",
        lambda d: d["paths"]["/orders/{orderId}/cancel"].pop("post"),
        "POST /orders/{orderId}/cancel: operation removed",
    ),
    (
        "a status removed",
        lambda d: _cancel(d)["responses"].pop("202"),
        "POST /orders/{orderId}/cancel: status 202 removed",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in API_CHANGES], ids=[c[0] for c in API_CHANGES])
def test_openapi_changes(edit: Edit, expected: str | None) -> None:
    old = _load(OPENAPI)
    new = copy.deepcopy(old)
    edit(new)

    found = [str(c) for c in compare_openapi(OPENAPI, old, new)]

    if expected is None:
        assert found == []
    else:
        assert any(f.startswith(f"{OPENAPI}: {expected}") for f in found), found


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose one commit holds the checked-in documents."""
    for name in [*sorted(p.relative_to(ROOT) for p in (ROOT / EVENT_SCHEMAS).glob("*.json")), Path(OPENAPI)]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "documents")
    return tmp_path


def _edit(repo: Path, name: str, edit: Edit) -> None:
    doc = json.loads((repo / name).read_text())
    edit(doc)
    (repo / name).write_text(json.dumps(doc, indent=2))


def test_the_unchanged_tree_passes(repo: Path) -> None:
    assert breaking_changes(repo, "HEAD") == []


def test_every_breaking_change_is_named_with_its_document(repo: Path) -> None:
    _edit(repo, ORDER_CREATED, lambda d: _del(d, "total"))
    _edit(repo, OPENAPI, lambda d: _del(_components(d)["ProductOut"], "name"))
    (repo / EVENT_SCHEMAS / "ShipmentDelivered.json").unlink()

    found = {str(c) for c in breaking_changes(repo, "HEAD")}

    assert f"{ORDER_CREATED}: detail.total: property removed" in found
    assert f"{OPENAPI}: GET /products/{{sku}} 200 response.name: property removed" in found
    assert f"{EVENT_SCHEMAS}/ShipmentDelivered.json: document: removed" in found


def _cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as CI runs it, on ``repo`` (the gate reads the documents from the root it is given)."""
    code = (
        "import sys; from pathlib import Path; import orderflow.paths as p, orderflow.cli as c; "
        "p.ROOT = Path(sys.argv[1]); sys.exit(c.main(sys.argv[2:]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(
        [sys.executable, "-c", code, str(repo), "schemas", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_command_refuses_a_removed_field_and_passes_an_added_one(repo: Path) -> None:
    _edit(repo, ORDER_CREATED, lambda d: _add(d, "giftNote", {"type": "string"}, required=False))
    passed = _cli(repo, "--breaking-since", "HEAD")
    assert passed.returncode == 0, passed.stderr
    assert "no breaking change since HEAD" in passed.stdout

    _edit(repo, ORDER_CREATED, lambda d: _del(d, "customerEmail"))
    refused = _cli(repo, "--breaking-since", "HEAD")
    assert refused.returncode == 1
    assert f"breaking: {ORDER_CREATED}: detail.customerEmail: property removed" in refused.stdout
    assert "1 breaking change(s) since HEAD" in refused.stderr


def test_an_unknown_ref_is_one_line_and_exit_2(repo: Path) -> None:
    done = _cli(repo, "--breaking-since", "no-such-ref")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "no-such-ref is not a commit" in done.stderr


def _order_created(detail_extra: dict[str, Any], metadata_extra: dict[str, Any]) -> dict[str, Any]:
    batch = json.loads((ROOT / "events" / "InventoryFunction" / "order-created.json").read_text())
    sample = json.loads(batch["Records"][0]["body"])  # the EventBridge event a record carries
    sample["detail"] = {**sample["detail"], **detail_extra}
    sample["detail"]["metadata"] = {**sample["detail"]["metadata"], **metadata_extra}
    return sample


def test_consumers_ignore_fields_they_do_not_know() -> None:
    """What makes an added optional field safe: an old consumer parses a newer event."""
    event = _order_created({"giftNote": "happy birthday"}, {"tenant": "eu-1"})

    received = parse_event(event, (OrderCreated,))

    assert received.detail.order_id is not None
    assert received.detail.model_dump(by_alias=True, mode="json") == {
        k: v for k, v in event["detail"].items() if k != "giftNote"
    } | {"metadata": {k: v for k, v in event["detail"]["metadata"].items() if k != "tenant"}}
