"""Every sample event in events/<Function>/ is what AWS would deliver, and valid.

SQS samples (every consumer's): a well-formed SQS event whose records' bodies are
EventBridge events, each checked as an EventBridge sample. EventBridge samples: a
well-formed envelope whose ``detail`` validates against
``events/schemas/<detail-type>.json`` and its pydantic model (AWS's own events, such as
a schedule's, have no schema of ours: their envelope is checked). HTTP samples: a
well-formed API Gateway HTTP API (payload 2.0) event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    EventBridgeModel,
    SqsModel,
)

from common.events import ALL_EVENTS
from orderflow.paths import ROOT, SCHEMAS_DIR

SAMPLES = sorted(p for p in (ROOT / "events").glob("*/*.json") if p.parent != SCHEMAS_DIR)
MODELS = {e.DETAIL_TYPE: e for e in ALL_EVENTS}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT / "events"))


def _eventbridge(path: Path) -> list[dict[str, Any]]:
    """The EventBridge events of a sample: itself, or its SQS records' bodies."""
    sample = _load(path)
    if "Records" in sample:
        return [json.loads(r["body"]) for r in sample["Records"]]
    return [sample] if "detail-type" in sample else []


SQS = [p for p in SAMPLES if "Records" in _load(p)]
EVENTBRIDGE = [p for p in SAMPLES if "detail-type" in _load(p)]
AWS_EVENTS = [p for p in EVENTBRIDGE if _load(p)["source"].startswith("aws.")]
DOMAIN_EVENTS = [p for p in EVENTBRIDGE if p not in AWS_EVENTS] + SQS
HTTP = [p for p in SAMPLES if _load(p).get("version") == "2.0"]
CONSUMERS = ("InventoryFunction", "NotificationsFunction", "ShippingFunction", "OrderStatusFunction")
# What `orderflow migrate --stack` sends the migration function (services/migrator).
DIRECT = [p for p in SAMPLES if _load(p) == {"source": "orderflow migrate"}]


def test_every_sample_is_of_a_known_kind():
    assert SAMPLES
    assert set(SAMPLES) == set(EVENTBRIDGE) | set(HTTP) | set(SQS) | set(DIRECT)


def test_every_consumer_sample_is_an_sqs_batch():
    consumer_samples = [p for p in SAMPLES if p.parent.name in CONSUMERS]
    assert consumer_samples and set(consumer_samples) == set(SQS)


@pytest.mark.parametrize("path", SQS, ids=_id)
def test_sqs_samples_are_what_an_event_source_mapping_hands_a_function(path):
    batch = SqsModel.model_validate(_load(path))
    assert batch.Records
    for record in batch.Records:
        queue = record.eventSourceARN.rsplit(":", 1)[1]
        assert queue == path.parent.name.removesuffix("Function") + "Queue"
        assert int(record.attributes.ApproximateReceiveCount) >= 1


@pytest.mark.parametrize("path", DOMAIN_EVENTS, ids=_id)
def test_eventbridge_samples_validate_against_their_schema(path):
    [sample] = _eventbridge(path)
    envelope = EventBridgeModel.model_validate(sample)
    detail_type = envelope.detail_type
    schema = json.loads((SCHEMAS_DIR / f"{detail_type}.json").read_text())
    assert envelope.source == schema["x-source"]
    jsonschema.validate(sample["detail"], schema, format_checker=jsonschema.FormatChecker())
    MODELS[detail_type].model_validate(sample["detail"])


@pytest.mark.parametrize("path", AWS_EVENTS, ids=_id)
def test_aws_event_samples_are_well_formed_envelopes(path):
    envelope = EventBridgeModel.model_validate(_load(path))
    assert envelope.detail_type not in MODELS


@pytest.mark.parametrize("path", HTTP, ids=_id)
def test_http_samples_are_http_api_v2_events(path):
    sample = APIGatewayProxyEventV2Model.model_validate(_load(path))
    method = sample.routeKey.split(" ", 1)[0]
    assert method == sample.requestContext.http.method
    assert sample.rawPath == sample.requestContext.http.path
    assert sample.headers is not None and sample.headers["authorization"].startswith("Bearer ")
    if sample.body is not None:
        json.loads(sample.body)
