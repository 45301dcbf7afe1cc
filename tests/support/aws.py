"""moto as the AWS emulator: a custom bus whose rules deliver into SQS queues.

A rule targeting a Lambda function would need Docker under moto, so each
consumer is stood in for by a queue, as ``orderflow local`` does.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

BUS = "orderflow-test"
REGION = "us-east-1"


@dataclass
class Bus:
    events: Any
    sqs: Any
    name: str = BUS
    queues: dict[str, str] = field(default_factory=dict)

    def route(self, rule: str, pattern: dict[str, Any]) -> str:
        """Deliver events matching ``pattern`` to a new queue; returns its URL."""
        url = self.sqs.create_queue(QueueName=f"{rule}-queue")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.events.put_rule(Name=rule, EventBusName=self.name, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule=rule, EventBusName=self.name, Targets=[{"Id": "q", "Arn": arn}])
        self.queues[rule] = url
        return url

    def drain(self, rule: str) -> list[dict[str, Any]]:
        """Every event delivered so far to ``rule``'s queue (removed from it)."""
        events: list[dict[str, Any]] = []
        url = self.queues[rule]
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = batch.get("Messages", [])
            if not messages:
                return events
            for m in messages:
                events.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def publish_outbox(container: Any) -> None:
    """Run the relay once, as its schedule would: publish whatever the fast path left.

    Publishing right after a commit is best effort by design: on a loaded machine
    its 1.8 s budget can be spent before its one call starts, and the row waits
    for the relay. A test that needs the event on the bus says so with this, so it
    does not depend on the fast path's timing; it still counts every event, so a
    row published twice would show.
    """
    from common.outbox.relay import relay

    relay(container.engine, container.publisher)


def make_bus(session: Any) -> Bus:
    events = session.client("events", region_name=REGION)
    sqs = session.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    return Bus(events=events, sqs=sqs)


class FlakyEvents:
    """Wraps an EventBridge client: raises, or refuses chosen entries, on demand."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.raise_calls = 0  # the next N put_events calls raise
        self.refuse_entries = 0  # the next N entries get an error result
        self.refuse_code = "InternalFailure"
        self.refuse_fraction = 0.0  # each entry refused with this probability (refuse_code)
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.raise_calls > 0:
            self.raise_calls -= 1
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")
        results: list[dict[str, Any]] = [{} for _ in Entries]
        send = []
        for i, entry in enumerate(Entries):
            if self.refuse_entries > 0 or random.random() < self.refuse_fraction:
                self.refuse_entries = max(0, self.refuse_entries - 1)
                results[i] = {"ErrorCode": self.refuse_code, "ErrorMessage": "injected"}
            else:
                send.append((i, entry))
        if send:
            real = self._real.put_events(Entries=[e for _, e in send])
            for (i, _), r in zip(send, real["Entries"], strict=True):
                results[i] = r
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
