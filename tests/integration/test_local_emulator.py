"""The local suite's AWS (``python -m orderflow.emulator``, stock moto) provisioned from
template.yaml, and its queue pollers against it: the consumers' topology of the
template (rule -> queue -> event source mapping, redrive to the DLQ), with moto's own
delivery and redrive."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from orderflow import emulator
from orderflow import template as tpl
from orderflow.local import BUS, SENDER, Options, Suite
from orderflow.logs import LogSink
from tests.support.local_suite import free_ports

pytestmark = pytest.mark.aws


@pytest.fixture(scope="module")
def aws() -> Iterator[emulator.Emulator]:
    server = emulator.Emulator(free_ports(1)[0])
    server.start()
    try:
        yield server
    finally:
        assert server.stop(), "the emulator had to be killed"


@pytest.fixture(scope="module")
def consumers(aws: emulator.Emulator) -> dict[str, emulator.ConsumerQueue]:
    provisioned = aws.provision(BUS, SENDER, tpl.functions(parameters={"Stage": "local"}))
    return {c.function_id: c for c in provisioned}


def test_each_consumer_gets_its_queue_and_rule_as_the_template_declares(
    aws: emulator.Emulator, consumers: dict[str, emulator.ConsumerQueue]
) -> None:
    sqs, events = aws.client("sqs"), aws.client("events")
    functions = tpl.functions(parameters={"Stage": "local"})
    assert set(consumers) == {fid for fid, fn in functions.items() if fn.queues}
    for function_id, consumer in consumers.items():
        [source] = functions[function_id].queues
        attributes = sqs.get_queue_attributes(QueueUrl=consumer.queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["VisibilityTimeout"] == str(source.visibility_timeout_s)
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == source.max_receive_count
        assert consumer.dlq_url is not None
        dlq_arn = sqs.get_queue_attributes(QueueUrl=consumer.dlq_url, AttributeNames=["QueueArn"])
        assert redrive["deadLetterTargetArn"] == dlq_arn["Attributes"]["QueueArn"]
        assert (consumer.batch_size, consumer.batching_window_s) == (
            source.batch_size,
            source.batching_window_s,
        )
        [rule] = source.rules
        assert consumer.rules == (rule.name,) and rule.name.startswith("orderflow-local-")
        described = events.describe_rule(Name=rule.name, EventBusName=BUS)
        assert json.loads(described["EventPattern"]) == rule.pattern
        targets = events.list_targets_by_rule(Rule=rule.name, EventBusName=BUS)["Targets"]
        assert [t["Arn"] for t in targets] == [consumer.queue_arn]


def test_a_rule_delivers_the_event_itself_as_the_message_body(aws: emulator.Emulator) -> None:
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="emulator-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name="emulator-test")
    events.put_rule(
        Name="to-queue",
        EventBusName="emulator-test",
        EventPattern=json.dumps({"source": ["orders.service"]}),
    )
    events.put_targets(Rule="to-queue", EventBusName="emulator-test", Targets=[{"Id": "q", "Arn": arn}])
    detail = {"orderId": "o-1", "note": 'quotes " and <angles>', "items": [{"sku": "A", "quantity": 2}]}
    for source in ("orders.service", "orders.service", "someone.else"):
        entry = {"EventBusName": "emulator-test", "Source": source, "DetailType": "OrderCreated"}
        answer = events.put_events(Entries=[{**entry, "Detail": json.dumps(detail)}])
        assert answer["FailedEntryCount"] == 0

    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "2"  # the rule's pattern matched two
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30)["Messages"]
    body = json.loads(got[0]["Body"])
    # moto's default input template: these keys (no "account"), the detail untouched.
    assert set(body) == {"id", "time", "version", "detail-type", "source", "region", "resources", "detail"}
    assert (body["source"], body["detail-type"], body["detail"]) == ("orders.service", "OrderCreated", detail)


def test_the_poller_deletes_what_was_handled_and_moto_dead_letters_a_poisoned_event(
    aws: emulator.Emulator, consumers: dict[str, emulator.ConsumerQueue]
) -> None:
    """ShippingFunction's queue, polled as the event source mapping: the poisoned event is
    reported failed on every receive, and after maxReceiveCount receives moto's redrive
    moves it to the DLQ; the others are handled once and deleted."""
    consumer = consumers["ShippingFunction"]
    assert consumer.max_receive_count is not None and consumer.dlq_url is not None
    sqs, events = aws.client("sqs"), aws.client("events")
    suite = Suite(Options(retry_delay_s=0), LogSink(stream=io.StringIO()))
    handled: list[str] = []
    poisoned_receives: list[str] = []

    def invoke(function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        assert function_id == "ShippingFunction"
        failures = []
        for record in event["Records"]:
            assert record["eventSourceARN"] == consumer.queue_arn
            body = json.loads(record["body"])
            if body["detail"]["orderId"] == "poisoned":
                poisoned_receives.append(record["attributes"]["ApproximateReceiveCount"])
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                handled.append(body["detail"]["orderId"])
        return {"batchItemFailures": failures}

    suite.invoke = invoke  # type: ignore[method-assign]
    orders = ["poisoned", *(f"o-{i}" for i in range(5))]
    for order_id in orders:
        answer = events.put_events(
            Entries=[
                {
                    "EventBusName": BUS,
                    "Source": "inventory.service",
                    "DetailType": "InventoryReserved",
                    "Detail": json.dumps({"orderId": order_id}),
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0
    poller = threading.Thread(target=suite.poll, args=(consumer, sqs), daemon=True)
    poller.start()
    try:
        deadline = time.monotonic() + 60
        dead: list[dict[str, Any]] = []
        while not dead and time.monotonic() < deadline:
            dead = sqs.receive_message(
                QueueUrl=consumer.dlq_url, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
    finally:
        suite.stop_event.set()
        poller.join(10)
    assert len(dead) == 1, "the poisoned event never reached the DLQ"
    body = json.loads(dead[0]["Body"])
    assert (body["detail-type"], body["detail"]["orderId"]) == ("InventoryReserved", "poisoned")
    assert poisoned_receives == [str(n) for n in range(1, consumer.max_receive_count + 1)]
    assert sorted(handled) == sorted(orders[1:])  # each once
    left = sqs.get_queue_attributes(QueueUrl=consumer.queue_url, AttributeNames=["All"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == left["ApproximateNumberOfMessagesNotVisible"] == "0"


@pytest.mark.parametrize("stock", ["", "1", "memoize_jsonpath_parse"])
def test_the_changes_to_moto_apply_only_to_the_version_they_were_measured_with(stock: str) -> None:
    """``apply_pinned_moto_changes``: on moto 5.2.5 only, none with ORDERFLOW_STOCK_MOTO=1,
    all but those it names otherwise (in a child interpreter: they change its modules)."""
    import os
    import subprocess
    import sys
    from importlib.metadata import version

    probe = (
        "import jsonpath_ng.ext as ext; from orderflow.emulator import apply_pinned_moto_changes as apply; "
        "print(','.join(apply()) or '-', hasattr(ext.parse, 'cache_info'), "
        "ext.parse('$.id').find({'id': 7})[0].value)"
    )
    env = {**os.environ, "ORDERFLOW_STOCK_MOTO": stock}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    every = ["memoize_jsonpath_parse", "retention_without_counting", "send_without_counting"]
    pinned = version("moto") == emulator.PINNED_MOTO
    applied = [] if stock == "1" or not pinned else [c for c in every if c != stock]
    memoized = "memoize_jsonpath_parse" in applied
    assert out.stdout.split() == [",".join(applied) or "-", str(memoized), "7"]
