"""Which Orderflow the ops commands talk to: the running local suite or a deployed stack.

The same boto3 calls either way. ``--stack NAME`` (or ``ORDERFLOW_STACK``) names a
deployed stack: its resources and outputs give the queue URLs and the bus, and boto3
finds credentials, region and any ``AWS_ENDPOINT_URL`` as it always does. Without a
stack, the local suite's state file (``.orderflow/local.json``, or ``--state-dir``)
gives the emulator's endpoint and the bus; the local queues are named
``<Function>-queue`` and ``<Function>-dlq``.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The consumers and their dead-letter queues (template.yaml logical ids).
CONSUMERS = {
    "OrderStatusFunction": "OrderStatusDLQ",
    "InventoryFunction": "InventoryDLQ",
    "NotificationsFunction": "NotificationsDLQ",
    "ShippingFunction": "ShippingDLQ",
}
# The queue each consumer reads (its rule's target), where a redrive puts events back.
SOURCE_QUEUES = {
    "OrderStatusFunction": "OrderStatusQueue",
    "InventoryFunction": "InventoryQueue",
    "NotificationsFunction": "NotificationsQueue",
    "ShippingFunction": "ShippingQueue",
}


class OpsError(Exception):
    """Why an ops command cannot go on, as one line saying what to do."""


def at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1, else a clear usage error."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return number


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        default=os.environ.get("ORDERFLOW_STACK"),
        help="a deployed stack's name (default: the local suite)",
    )
    parser.add_argument("--state-dir", help="the local suite's state folder (default: .orderflow/)")


@dataclass
class Target:
    endpoint: str | None  # None: boto3's own (AWS, or AWS_ENDPOINT_URL)
    bus: str
    stack: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            kwargs: dict[str, Any] = {"config": Config(retries={"total_max_attempts": 3}, read_timeout=20)}
            if self.endpoint:
                from orderflow import emulator

                kwargs.update(
                    endpoint_url=self.endpoint,
                    region_name=emulator.REGION,
                    aws_access_key_id=emulator.CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=emulator.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                )
            self._clients[service] = boto3.client(service, **kwargs)  # type: ignore[call-overload]
        return self._clients[service]

    def dlq_url(self, function_id: str) -> str:
        return self._queue_url(function_id, CONSUMERS, "dlq")

    def queue_url(self, function_id: str) -> str:
        """The queue the consumer reads (its rule's target)."""
        return self._queue_url(function_id, SOURCE_QUEUES, "queue")

    def _queue_url(self, function_id: str, logical_ids: dict[str, str], local_suffix: str) -> str:
        if function_id not in logical_ids:
            raise OpsError(
                f"{function_id} is not a consumer with a dead-letter queue (one of: {', '.join(CONSUMERS)})"
            )
        if self.stack is None:
            name = f"{function_id}-{local_suffix}"
            return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        answer = self.client("cloudformation").describe_stack_resource(
            StackName=self.stack, LogicalResourceId=logical_ids[function_id]
        )
        return str(answer["StackResourceDetail"]["PhysicalResourceId"])  # an SQS queue's id is its URL


def resolve(args: argparse.Namespace) -> Target:
    if args.stack:
        from orderflow.errors import one_line

        try:
            outputs = _stack_outputs(args.stack)
        except Exception as exc:
            raise OpsError(
                f"cannot read stack {args.stack}: {one_line(exc)} (check its name and your credentials)"
            ) from None
        return Target(endpoint=None, bus=outputs.get("EventBusName", ""), stack=args.stack)
    from orderflow.local import STATE_DIR

    state_dir = Path(args.state_dir).resolve() if args.state_dir else STATE_DIR
    path = state_dir / "local.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        raise OpsError(
            f"no local suite is running from {state_dir}: start one with `./dev run`, "
            "or name a deployed stack with --stack"
        ) from None
    return Target(endpoint=state["aws"], bus=state["bus"], state=state)


def _stack_outputs(stack: str) -> dict[str, str]:
    import boto3

    answer = boto3.client("cloudformation").describe_stacks(StackName=stack)
    return {o["OutputKey"]: o["OutputValue"] for o in answer["Stacks"][0].get("Outputs", [])}
