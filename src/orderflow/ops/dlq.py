"""``orderflow dlq``: the consumers' dead-letter queues: list, show, redrive.

A message reaches a consumer's DLQ in one of four envelopes:

* the consumer itself (it refused the event for good: malformed, not one it takes, or
  refused by its use case; ``common.consumer.dead_letter``): the body is the event
  as the rule delivered it, the reason in message attributes (``REFUSED_BY``,
  ``ERROR_CODE``, ``ERROR_MESSAGE``, ``RECEIVE_COUNT``);
* its queue's redrive policy (the function failed the event on ``maxReceiveCount``
  receives): the body is the EventBridge event itself, as the rule delivered it, with
  no reason attached (the function's log has it);
* the rule's dead-letter config (EventBridge could not put the event in the queue):
  the body is the event itself too, the reason in message attributes (``ERROR_CODE``,
  ``ERROR_MESSAGE``, ``RULE_ARN``, ``TARGET_ARN``);
* Lambda's on-failure destination, from before the consumers read queues (the
  function failed every asynchronous attempt): the body is an invocation record,
  ``{"requestContext": {"condition", "approximateInvokeCount", ...}, "requestPayload":
  <the event>, "responsePayload": {"errorType", "errorMessage"}}``. Still read, for the
  messages already there (a DLQ keeps them 14 days).

Redrive sends each event back into the consumer's own queue, where the failed
delivery came from, as AWS's own DLQ redrive does (and the console's "Start DLQ
redrive"; moto has no ``StartMessageMoveTask``, so the move is done here): only the
consumer that failed sees it again, not every rule of the bus, and nobody needs to
publish as another service. The body is the event, its ``id`` and ``metadata.eventId``
unchanged, so a consumer that handled it already skips it. A message is deleted from
the DLQ only once SQS accepted the event into the queue.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

from orderflow.ops.target import CONSUMERS, OpsError, Target, add_target_arguments, at_least_one, resolve


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt: str
    envelope: str  # "consumer-refused", "queue-redrive", "rule-dlq", "lambda-destination" or "unknown"
    event: dict[str, Any] | None
    error: str | None
    attempts: int | None
    sent_at: float | None  # epoch seconds

    def as_json(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "envelope": self.envelope,
            "error": self.error,
            "attempts": self.attempts,
            "sentAt": _iso(self.sent_at),
            "event": self.event,
        }


def decode(message: dict[str, Any]) -> DeadLetter:
    """One SQS message of a DLQ, whichever envelope it came in."""
    attributes = message.get("Attributes", {})
    sent = attributes.get("SentTimestamp")
    sent_at = int(sent) / 1000 if sent else None
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        body = None
    common = {"message_id": message["MessageId"], "receipt": message["ReceiptHandle"], "sent_at": sent_at}
    if isinstance(body, dict) and "requestPayload" in body and "requestContext" in body:
        response = body.get("responsePayload") or {}
        context = body["requestContext"]
        error = (
            f"{response.get('errorType')}: {response.get('errorMessage')}"
            if isinstance(response, dict) and response.get("errorType")
            else context.get("condition")
        )
        return DeadLetter(
            envelope="lambda-destination",
            event=body["requestPayload"],
            error=error,
            attempts=context.get("approximateInvokeCount"),
            **common,
        )
    if isinstance(body, dict) and "detail-type" in body:
        attrs = {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()}
        error = ": ".join(x for x in (attrs.get("ERROR_CODE"), attrs.get("ERROR_MESSAGE")) if x) or None
        if attrs.get("REFUSED_BY"):
            count = attrs.get("RECEIVE_COUNT")
            return DeadLetter(
                envelope="consumer-refused",
                event=body,
                error=f"{attrs['REFUSED_BY']} refused it: {error}",
                attempts=int(count) if count and count.isdigit() else None,
                **common,
            )
        if not attrs.get("ERROR_CODE") and not attrs.get("RULE_ARN"):
            return DeadLetter(envelope="queue-redrive", event=body, error=None, attempts=None, **common)
        return DeadLetter(envelope="rule-dlq", event=body, error=error, attempts=None, **common)
    return DeadLetter(
        envelope="unknown", event=None, error="not an EventBridge event", attempts=None, **common
    )


def _iso(epoch: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def _receive_all(
    target: Target, url: str, limit: int | None = None, visibility_s: int = 30
) -> list[dict[str, Any]]:
    """Every message now in the queue (hidden for ``visibility_s`` while we look)."""
    sqs = target.client("sqs")
    found: list[dict[str, Any]] = []
    while limit is None or len(found) < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10 if limit is None else max(1, min(10, limit - len(found))),
            WaitTimeSeconds=0,
            VisibilityTimeout=visibility_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        found.extend(batch)
    return found


def _release(target: Target, url: str, messages: list[dict[str, Any]]) -> None:
    """Make messages we only looked at visible again at once."""
    for message in messages:
        target.client("sqs").change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def depth(target: Target, url: str) -> int:
    """Messages in the queue, visible or in flight (SQS's approximate counts)."""
    attrs = target.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
        attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def peek(target: Target, url: str, limit: int | None = None, visibility_s: int = 5) -> list[DeadLetter]:
    """The queue's messages decoded, left in the queue (visible again at once)."""
    messages = _receive_all(target, url, limit=limit, visibility_s=visibility_s)
    letters = [decode(m) for m in messages]
    _release(target, url, messages)
    return letters


def depths(target: Target) -> list[dict[str, Any]]:
    """Each consumer's DLQ: its URL, depth and the age of its oldest message."""
    rows = []
    for function_id in CONSUMERS:
        url = target.dlq_url(function_id)
        count = depth(target, url)
        oldest = None
        if count:
            oldest = min(
                (s for s in (d.sent_at for d in peek(target, url, visibility_s=1)) if s), default=None
            )
        rows.append(
            {
                "function": function_id,
                "queueUrl": url,
                "depth": count,
                "oldestAgeS": f"{time.time() - oldest:.0f} s" if oldest else "-",
            }
        )
    return rows


def run_list(args: argparse.Namespace) -> int:
    rows = depths(resolve(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'FUNCTION':<24} {'DEPTH':>5}  {'OLDEST':>8}  QUEUE")
    for row in rows:
        print(f"{row['function']:<24} {row['depth']:>5}  {row['oldestAgeS']:>8}  {row['queueUrl']}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    target = resolve(args)
    letters = peek(target, target.dlq_url(args.function), limit=args.max)
    if args.json:
        print(json.dumps([letter.as_json() for letter in letters], indent=2))
        return 0
    if not letters:
        print(f"{args.function}: its dead-letter queue is empty")
    for letter in letters:
        event = letter.event or {}
        detail = event.get("detail") or {}
        print(
            f"{letter.message_id}  {_iso(letter.sent_at) or '-'}  via {letter.envelope}"
            f"  attempts {letter.attempts if letter.attempts is not None else '-'}"
        )
        print(
            f"  event {event.get('id', '-')}  {event.get('source', '-')} {event.get('detail-type', '-')}"
            f"  order {detail.get('orderId', '-')}"
            f"  eventId {(detail.get('metadata') or {}).get('eventId', '-')}"
        )
        print(f"  error {letter.error or '-'}")
    return 0


def redrive(
    target: Target,
    function_id: str,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    message_ids: set[str] | None = None,
) -> list[DeadLetter]:
    """Send each dead letter's event back into the consumer's queue; delete it from the DLQ
    once SQS accepted it. Returns the letters put back (or, with ``dry_run``, that would be).
    With ``message_ids``, only those messages (the others are left as they were)."""
    url, queue = target.dlq_url(function_id), target.queue_url(function_id)
    sqs = target.client("sqs")
    messages = _receive_all(target, url, limit=limit, visibility_s=60)
    if message_ids is not None:
        _release(target, url, [m for m in messages if m["MessageId"] not in message_ids])
        messages = [m for m in messages if m["MessageId"] in message_ids]
    done: list[DeadLetter] = []
    failures: list[str] = []
    for message in messages:
        letter = decode(message)
        if letter.event is None:
            failures.append(f"{letter.message_id}: not an EventBridge event, left in the queue")
            continue
        if dry_run:
            done.append(letter)
            continue
        # The event exactly as the rule delivered it (the body itself, when it is the event).
        body = message["Body"] if letter.envelope != "lambda-destination" else json.dumps(letter.event)
        try:
            sqs.send_message(QueueUrl=queue, MessageBody=body)
        except Exception as exc:
            from orderflow.errors import one_line

            failures.append(f"{letter.message_id}: {one_line(exc)}")
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt)
        done.append(letter)
    _release(
        target, url, [m for m in messages if m["MessageId"] not in {d.message_id for d in done} or dry_run]
    )
    if failures:
        raise OpsError(f"{len(failures)} message(s) not redriven, left in the queue: " + "; ".join(failures))
    return done


def run_redrive(args: argparse.Namespace) -> int:
    target = resolve(args)
    done = redrive(target, args.function, dry_run=args.dry_run, limit=args.max)
    verb = "would put back" if args.dry_run else "put back"
    for letter in done:
        event = letter.event or {}
        print(f"{verb} {event.get('detail-type')} {event.get('id')} (message {letter.message_id})")
    print(f"{args.function}: {verb} {len(done)} event(s) into its queue {target.queue_url(args.function)}")
    return 0


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser(
        "dlq",
        help="the consumers' dead-letter queues: depth, decoded messages, redrive",
        description="Look at and redrive the consumers' dead-letter queues (local suite or --stack).",
    )
    add_target_arguments(dlq)  # before the subcommands, which take them too (orderflow.parser)
    commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = commands.add_parser("list", help="each consumer's DLQ with its depth and oldest message age")
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    listing.set_defaults(run=run_list)
    show = commands.add_parser("show", help="each message of FUNCTION's DLQ decoded")
    show.add_argument("function", metavar="FUNCTION", help=f"one of {', '.join(CONSUMERS)}")
    show.add_argument("--max", type=at_least_one, help="show at most N messages")
    show.add_argument("--json", action="store_true", help="JSON for scripts")
    show.set_defaults(run=run_show)
    again = commands.add_parser("redrive", help="put FUNCTION's dead letters back into its queue")
    again.add_argument("function", metavar="FUNCTION", help=f"one of {', '.join(CONSUMERS)}")
    again.add_argument("--dry-run", action="store_true", help="say what would be put back, change nothing")
    again.add_argument("--max", type=at_least_one, help="put back at most N messages")
    again.set_defaults(run=run_redrive)
