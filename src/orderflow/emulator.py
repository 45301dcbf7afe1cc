"""The local AWS: moto's server, with the bus, rules, queues and SES identity of
template.yaml.

Each consumer's ``EventBridgeRule`` (its pattern read from the template, never
copied) targets an SQS queue that stands in for the function, with a redrive
policy to the consumer's dead-letter queue after the rule's retry count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orderflow import template as tpl

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
DEFAULT_RETRIES = 185  # EventBridge's default MaximumRetryAttempts


@dataclass(frozen=True)
class ConsumerQueue:
    function_id: str
    rule: str
    pattern: dict[str, Any]
    max_retries: int
    queue_url: str
    dlq_url: str


class Emulator:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        # moto's server logs every request through werkzeug: the functions log what matters.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def provision(
        self, bus: str, sender_email: str, functions: dict[str, tpl.Function], visibility_s: int = 60
    ) -> list[ConsumerQueue]:
        """Create (or find again) the bus, one queue + DLQ + rule per consumer, the sender."""
        events, sqs = self.client("events"), self.client("sqs")
        if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
            events.create_event_bus(Name=bus)
        consumers = []
        for fn in functions.values():
            for name, spec in fn.events.items():
                if spec.get("Type") != "EventBridgeRule":
                    continue
                props = spec["Properties"]
                retries = int(props.get("RetryPolicy", {}).get("MaximumRetryAttempts", DEFAULT_RETRIES))
                rule = f"{fn.logical_id}-{name}"
                dlq = sqs.create_queue(QueueName=f"{fn.logical_id}-dlq")["QueueUrl"]
                dlq_arn = _arn(sqs, dlq)
                queue = sqs.create_queue(
                    QueueName=f"{fn.logical_id}-queue",
                    Attributes={
                        "VisibilityTimeout": str(visibility_s),
                        # first delivery + the rule's retries, then the DLQ
                        "RedrivePolicy": json.dumps(
                            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(retries + 1)}
                        ),
                    },
                )["QueueUrl"]
                events.put_rule(
                    Name=rule, EventBusName=bus, EventPattern=json.dumps(props["Pattern"]),
                    State="ENABLED",
                )
                events.put_targets(
                    Rule=rule, EventBusName=bus, Targets=[{"Id": "consumer", "Arn": _arn(sqs, queue)}]
                )
                consumers.append(
                    ConsumerQueue(fn.logical_id, rule, props["Pattern"], retries, queue, dlq)
                )
        ses = self.client("ses")
        ses.verify_email_identity(EmailAddress=sender_email)
        return consumers


def _arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])
