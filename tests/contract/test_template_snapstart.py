"""SnapStart, behind the template's ``SnapStart`` parameter: on the published versions of
the functions where it helps, never together with provisioned concurrency."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from orderflow.template import load
from tests.support.tools import sam_transform

# The HTTP functions (a user waits on each cold start) and the consumers every order
# passes through; not the once-a-minute relay, whose one environment stays warm.
SNAPSTART = {
    "OrdersApiFunction",
    "InventoryApiFunction",
    "ShippingApiFunction",
    "OrderStatusFunction",
    "InventoryFunction",
    "NotificationsFunction",
    "ShippingFunction",
}
APPLY_ON = {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}


def evaluate(value: Any, parameters: dict[str, str], conditions: dict[str, Any]) -> Any:
    """CloudFormation's evaluation of the condition and rule functions the template uses."""
    if isinstance(value, list):
        return [evaluate(v, parameters, conditions) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    [(name, args)] = value.items()
    if name == "Ref" and args in parameters:
        return parameters[args]
    if name == "Condition":
        return evaluate(conditions[args], parameters, conditions)
    if name == "Fn::Equals":
        left, right = evaluate(args, parameters, conditions)
        return left == right
    if name == "Fn::Not":
        return not evaluate(args[0], parameters, conditions)
    if name == "Fn::And":
        return all(evaluate(args, parameters, conditions))
    if name == "Fn::Or":
        return any(evaluate(args, parameters, conditions))
    if name == "Fn::Join":
        separator, items = args
        items = evaluate(items, parameters, conditions)
        if isinstance(items, str):  # a CommaDelimitedList parameter, as given
            items = items.split(",") if items else []
        return separator.join(str(item) for item in items)
    if name == "Fn::If":
        condition, then, otherwise = args
        chosen = then if evaluate(conditions[condition], parameters, conditions) else otherwise
        return evaluate(chosen, parameters, conditions)
    return value


def parameters(**given: str) -> dict[str, str]:
    doc = load()
    values = {k: str(p.get("Default", "")) for k, p in doc["Parameters"].items()}
    values.update(given)
    return values


def refused(values: dict[str, str]) -> list[str]:
    """The rules' assertions that fail for ``values`` (CloudFormation then creates nothing)."""
    doc = load()
    failed = []
    for name, rule in doc.get("Rules", {}).items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], values, {}):
            continue
        failed += [
            f"{name}: {a['AssertDescription']}"
            for a in rule["Assertions"]
            if not evaluate(a["Assert"], values, {})
        ]
    return failed


def test_snapstart_is_a_parameter_off_by_default():
    doc = load()
    parameter = doc["Parameters"]["SnapStart"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])
    assert doc["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]}


def test_the_runtime_supports_snapstart():
    # SnapStart for Python: the python3.12 managed runtime and later
    runtime = load()["Globals"]["Function"]["Runtime"]
    match = re.fullmatch(r"python3\.(\d+)", runtime)
    assert match and int(match[1]) >= 12, runtime


@pytest.mark.parametrize("function_id", sorted(SNAPSTART))
def test_snapstart_functions_publish_versions_behind_an_alias(function_id):
    props = load()["Resources"][function_id]["Properties"]
    assert props["AutoPublishAlias"] == "live"
    assert props["SnapStart"] == {"ApplyOn": APPLY_ON}
    # a replaced version (and its snapshot, billed while it exists) is deleted, not retained
    assert props["VersionDeletionPolicy"] == "Delete"


def test_the_relay_has_no_snapstart():
    functions = {k for k, r in load()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    # nor the migration function: it runs once per deploy, nobody waits on its cold start
    assert functions - SNAPSTART == {"OutboxRelayFunction", "MigrationFunction"}
    assert "SnapStart" not in load()["Resources"]["OutboxRelayFunction"]["Properties"]


@pytest.mark.parametrize("snapstart", ["true", "false"])
def test_with_the_parameter_the_published_versions_have_snapstart_or_not(snapstart, translated):
    doc, values = translated, parameters(SnapStart=snapstart)
    resources = doc["Resources"]
    for function_id in SNAPSTART:
        props = resources[function_id]["Properties"]
        expected = "PublishedVersions" if snapstart == "true" else "None"
        assert evaluate(props["SnapStart"]["ApplyOn"], values, doc["Conditions"]) == expected
        # the alias SAM made points at the version it published
        alias = resources[f"{function_id}Aliaslive"]
        assert alias["Type"] == "AWS::Lambda::Alias"
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Type"] == "AWS::Lambda::Version"
        assert resources[version]["Properties"]["FunctionName"] == {"Ref": function_id}
        assert resources[version]["DeletionPolicy"] == "Delete"


def test_every_event_source_of_a_snapstart_function_invokes_its_alias(translated):
    resources = translated["Resources"]
    for function_id in SNAPSTART:
        alias = {"Ref": f"{function_id}Aliaslive"}
        # the HTTP routes invoke through permissions, the consumers' queues through mappings
        permissions = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::Permission"
            and r["Properties"]["FunctionName"] in ({"Ref": function_id}, alias)
        ]
        mappings = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping"
            and r["Properties"]["FunctionName"] in ({"Ref": function_id}, alias)
        ]
        assert permissions or mappings, function_id
        assert all(p["FunctionName"] == alias for p in permissions + mappings), function_id
        for rule in (r for r in resources.values() if r["Type"] == "AWS::Events::Rule"):
            arns = [t["Arn"] for t in rule["Properties"]["Targets"]]
            assert {"Fn::GetAtt": [function_id, "Arn"]} not in arns, function_id
        # nothing invokes them asynchronously any more: no retries or destinations to configure
        assert not [
            r
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventInvokeConfig"
            and r["Properties"]["FunctionName"] == {"Ref": function_id}
        ], function_id


@pytest.mark.parametrize(("snapstart", "provisioned"), list(itertools.product(["true", "false"], repeat=2)))
def test_the_rules_refuse_snapstart_with_provisioned_concurrency(snapstart, provisioned):
    failed = refused(parameters(SnapStart=snapstart, ProvisionedConcurrency=provisioned))
    if snapstart == provisioned == "true":
        assert len(failed) == 1 and "exclude each other" in failed[0]
    else:
        assert failed == []


def test_the_rules_survive_the_sam_transform(translated):
    assert translated["Rules"] == load()["Rules"]


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """The template after the SAM transform with SnapStart=true."""
    return sam_transform(load(), {"SnapStart": "true"})
