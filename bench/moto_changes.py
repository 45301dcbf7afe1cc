"""What each change to moto that the local emulator keeps buys (src/orderflow/emulator.py,
``apply_pinned_moto_changes``, moto 5.2.5 only).

    .venv/bin/python bench/moto_changes.py [--backlog 1000] [--events 200]

For each variant (stock moto, every change, every change but one) it starts the
emulator (``python -m orderflow.emulator``, as ``orderflow local`` does) with
``ORDERFLOW_STOCK_MOTO`` set accordingly, makes a bus with its archive and one rule
into a queue that already holds ``--backlog`` messages (a consumer fallen behind),
then measures the emulator process's CPU per ``PutEvents`` (one event, delivered to
the queue and the archive) and per message received and deleted (batches of ten).
A script, not a test: nothing fails when a number is poor. About a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orderflow import emulator  # noqa: E402
from tests.support.local_suite import free_ports  # noqa: E402

CHANGES = ["memoize_jsonpath_parse", "retention_without_counting", "send_without_counting"]


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def measure(off: str, backlog: int, events: int) -> tuple[float, float]:
    """(ms of CPU per PutEvents, ms per message received and deleted)."""
    os.environ["ORDERFLOW_STOCK_MOTO"] = off
    aws = emulator.Emulator(free_ports(1)[0])
    aws.start()
    try:
        proc = psutil.Process(aws.pid)
        bus, sqs = aws.client("events"), aws.client("sqs")
        bus.create_event_bus(Name="bench")
        bus.create_archive(ArchiveName="bench", EventSourceArn=bus.describe_event_bus(Name="bench")["Arn"])
        url = sqs.create_queue(QueueName="bench")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus.put_rule(
            Name="bench", EventBusName="bench", EventPattern=json.dumps({"source": ["orders.service"]})
        )
        bus.put_targets(Rule="bench", EventBusName="bench", Targets=[{"Id": "queue", "Arn": arn}])
        for _ in range(0, backlog, 10):
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "{}"} for i in range(10)]
            )
        entry = {
            "EventBusName": "bench",
            "Source": "orders.service",
            "DetailType": "OrderCreated",
            "Detail": json.dumps({"orderId": "o-1"}),
        }
        began = cpu(proc)
        for _ in range(events):
            bus.put_events(Entries=[entry])
        put_ms = 1000 * (cpu(proc) - began) / events
        received = 0
        began = cpu(proc)
        for _ in range(events // 10):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)["Messages"]
            received += len(got)
            handles = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            sqs.delete_message_batch(QueueUrl=url, Entries=handles)
        return put_ms, 1000 * (cpu(proc) - began) / received
    finally:
        aws.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=1000, help="messages already in the queue")
    parser.add_argument("--events", type=int, default=200, help="PutEvents calls (and messages received)")
    args = parser.parse_args()
    variants = [("stock moto", "1"), ("every change", "")] + [(f"all but {c}", c) for c in CHANGES]
    print(f"moto's CPU, queue backlog {args.backlog} messages, load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<40} {'PutEvents ms':>13} {'receive+delete ms/msg':>22}")
    for label, off in variants:
        put_ms, receive_ms = measure(off, args.backlog, args.events)
        print(f"{label:<40} {put_ms:>13.2f} {receive_ms:>22.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
