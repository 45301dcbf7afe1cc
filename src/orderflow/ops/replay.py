"""``orderflow replay --from T --to T [--rule R] [--dry-run]``: the bus archive's events
of a window sent to the bus again through EventBridge's replay API; waits and reports.

Replayed events keep their ``metadata.eventId``: consumers that handled them already
skip them, so a replay fills gaps and changes nothing else.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from orderflow.ops.target import OpsError, Target, add_target_arguments, resolve

FINISHED = {"COMPLETED", "FAILED", "CANCELLED"}


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text} is not an ISO 8601 time (e.g. 2026-12-01T10:00:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def archive_name(target: Target) -> str:
    if target.stack is None:
        return target.bus  # the local suite names its archive as its bus
    answer = target.client("cloudformation").describe_stack_resource(
        StackName=target.stack, LogicalResourceId="EventArchive"
    )
    return str(answer["StackResourceDetail"]["PhysicalResourceId"])


def replay(
    target: Target,
    start: datetime,
    end: datetime,
    rules: list[str] | None = None,
    dry_run: bool = False,
    timeout_s: float = 600,
) -> dict[str, Any]:
    events = target.client("events")
    archive = events.describe_archive(ArchiveName=archive_name(target))
    destination: dict[str, Any] = {"Arn": events.describe_event_bus(Name=target.bus)["Arn"]}
    if rules:
        destination["FilterArns"] = [
            events.describe_rule(Name=r, EventBusName=target.bus)["Arn"] for r in rules
        ]
    plan = {
        "archive": archive["ArchiveName"],
        "archivedEvents": archive.get("EventCount"),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "rules": rules or "every rule of the bus",
    }
    if dry_run:
        return {**plan, "state": "DRY RUN"}
    name = f"orderflow-{int(time.time() * 1000)}"
    events.start_replay(
        ReplayName=name,
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=start,
        EventEndTime=end,
        Destination=destination,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        state = events.describe_replay(ReplayName=name)
        if state["State"] in FINISHED or time.monotonic() > deadline:
            break
        time.sleep(1)
    return {**plan, "replay": name, "state": state["State"], "reason": state.get("StateReason")}


def run(args: argparse.Namespace) -> int:
    if args.end <= args.start:
        raise OpsError("--to must be after --from")
    target = resolve(args)
    report = replay(target, args.start, args.end, args.rule, args.dry_run, args.timeout)
    for key, value in report.items():
        if value is not None:
            print(f"{key}: {value}")
    if report["state"] not in {"COMPLETED", "DRY RUN"}:
        reason = report.get("reason") or "see the EventBridge console"
        raise OpsError(f"replay {report.get('replay')} ended {report['state']}: {reason}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay the bus archive over a time window (consumers skip what they handled)",
        description="Replay the bus archive's events of a window through EventBridge's replay API.",
    )
    parser.add_argument("--from", dest="start", type=_when, required=True, metavar="ISO", help="window start")
    parser.add_argument("--to", dest="end", type=_when, required=True, metavar="ISO", help="window end")
    parser.add_argument("--rule", action="append", metavar="NAME", help="only to this rule (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be replayed, start nothing")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds to wait for the replay (default 600)"
    )
    add_target_arguments(parser)
    parser.set_defaults(run=run)
