"""Reads template.yaml: the functions, their code, handlers, environment, and each
consumer's queue with the rule that fills it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orderflow.paths import TEMPLATE


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) kept as data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Rule:
    """An ``AWS::Events::Rule`` (its name with the template's parameters filled in)."""

    logical_id: str
    name: str
    pattern: dict[str, Any]


@dataclass(frozen=True)
class QueueSource:
    """A function's ``SQS`` event: its queue, the rules that target the queue, its event
    source mapping's settings and the queue's redrive policy, as the template has them
    (parameters at their defaults, or as given to ``functions``)."""

    event: str  # the function's event name
    queue_id: str  # the queue's logical id
    rules: tuple[Rule, ...]
    batch_size: int
    batching_window_s: int
    report_batch_item_failures: bool
    max_concurrency: int | None
    visibility_timeout_s: int
    dlq_id: str | None  # the RedrivePolicy's target queue (logical id)
    max_receive_count: int | None


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    layers: list[Any]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: tuple[QueueSource, ...] = ()

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def rule_patterns(self) -> list[dict[str, Any]]:
        """The patterns of the events this function consumes: the rules that fill its
        queues (and any rule targeting the function itself)."""
        direct = [
            e["Properties"]["Pattern"] for e in self.events.values() if e.get("Type") == "EventBridgeRule"
        ]
        return [rule.pattern for source in self.queues for rule in source.rules] + direct


def value(node: Any, parameters: dict[str, str]) -> Any:
    """A template value with ``!Ref`` to a parameter and ``!Sub`` of parameters filled in;
    anything else (a resource's attribute, say) as it is."""
    if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in parameters:
        return parameters[node["Ref"]]
    if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return re.sub(r"\$\{([^}!.]+)\}", lambda m: parameters.get(m[1], m[0]), node["Fn::Sub"])
    return node


def _number(node: Any, parameters: dict[str, str], default: int | None) -> int | None:
    found = value(node, parameters) if node is not None else default
    return int(found) if found is not None else None


def _target(node: Any) -> str | None:
    """The logical id of ``!GetAtt X.Arn`` (or ``!Ref X``)."""
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return str(node["Fn::GetAtt"][0])
    if isinstance(node, dict) and "Ref" in node:
        return str(node["Ref"])
    return None


def _queue_sources(
    props: dict[str, Any], resources: dict[str, Any], parameters: dict[str, str]
) -> tuple[QueueSource, ...]:
    sources = []
    for name, event in (props.get("Events") or {}).items():
        if event.get("Type") != "SQS":
            continue
        spec = event["Properties"]
        queue_id = _target(spec["Queue"])
        queue = (resources.get(queue_id or "") or {}).get("Properties") or {}
        redrive = queue.get("RedrivePolicy") or {}
        rules = tuple(
            Rule(
                rule_id,
                str(value(r["Properties"].get("Name", rule_id), parameters)),
                r["Properties"]["EventPattern"],
            )
            for rule_id, r in resources.items()
            if r["Type"] == "AWS::Events::Rule"
            and any(_target(t["Arn"]) == queue_id for t in r["Properties"].get("Targets", []))
        )
        sources.append(
            QueueSource(
                event=name,
                queue_id=str(queue_id),
                rules=rules,
                batch_size=_number(spec.get("BatchSize"), parameters, 10) or 10,
                batching_window_s=_number(spec.get("MaximumBatchingWindowInSeconds"), parameters, 0) or 0,
                report_batch_item_failures="ReportBatchItemFailures"
                in (spec.get("FunctionResponseTypes") or []),
                max_concurrency=_number(
                    (spec.get("ScalingConfig") or {}).get("MaximumConcurrency"), parameters, None
                ),
                visibility_timeout_s=_number(queue.get("VisibilityTimeout"), parameters, 30) or 0,
                dlq_id=_target(redrive.get("deadLetterTargetArn")),
                max_receive_count=_number(redrive.get("maxReceiveCount"), parameters, None),
            )
        )
    return tuple(sources)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as f:
        return yaml.load(f, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def parameter_defaults(doc: dict[str, Any]) -> dict[str, str]:
    return {name: str(p["Default"]) for name, p in (doc.get("Parameters") or {}).items() if "Default" in p}


def functions(path: Path = TEMPLATE, parameters: dict[str, str] | None = None) -> dict[str, Function]:
    """Every AWS::Serverless::Function, with Globals applied as SAM applies them.

    ``parameters`` override the template's defaults (``Stage``, say) where values are
    read from them: each queue source's settings and its rules' names.
    """
    doc = load(path)
    given = {**parameter_defaults(doc), **(parameters or {})}
    globals_ = doc.get("Globals", {}).get("Function", {})
    global_env = globals_.get("Environment", {}).get("Variables", {})
    found = {}
    for logical_id, resource in doc["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        found[logical_id] = Function(
            logical_id=logical_id,
            code_uri=path.parent / props["CodeUri"],
            handler=props["Handler"],
            environment=env,
            layers=props.get("Layers", globals_.get("Layers", [])),
            events=props.get("Events", {}),
            queues=_queue_sources(props, doc["Resources"], given),
        )
    return found
