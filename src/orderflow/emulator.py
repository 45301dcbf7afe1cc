"""The local AWS: moto's server, with the bus, rules, queues and SES identity of
template.yaml.

Each consumer's queue is created as the template declares it (its visibility timeout,
and its redrive policy to the consumer's dead-letter queue after ``maxReceiveCount``
receives), and each rule that targets the queue is put on the bus with its pattern
read from the template, never copied. ``orderflow local`` then polls each queue as
Lambda's event source mapping would (``local.Suite.poll``); moto's own redrive moves
a message that was received ``maxReceiveCount`` times to the DLQ.

moto's server runs in a process of its own (``python -m orderflow.emulator``, started
and stopped by ``Emulator``): under load it is the busiest Python in the suite, and in
the orchestrator's process it shared one GIL with the HTTP API and the queue pollers.
The child ends when its parent does, however the parent ends: it reads its stdin,
whose write end only the parent holds, and stops at end of file (as the functions'
processes do), so a SIGKILLed ``orderflow local`` leaves no emulator behind.

moto runs as released but for three changes (``apply_pinned_moto_changes``), each
applied only on the moto version it was measured with and listed with what it buys in
bench/README.md; any other version of moto runs untouched.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from orderflow import template as tpl

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account: the queues' URLs and ARNs name it
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass(frozen=True)
class ConsumerQueue:
    """A consumer's queue as created here, with what its event source mapping needs."""

    function_id: str
    rules: tuple[str, ...]  # the names of the rules that fill it
    queue_url: str
    queue_arn: str
    dlq_url: str | None
    batch_size: int = 10
    batching_window_s: int = 0
    max_receive_count: int | None = None
    max_concurrency: int | None = None  # its ScalingConfig.MaximumConcurrency


class EmulatorError(RuntimeError):
    """moto's server did not come up (its process exited, or never listened)."""


class Emulator:
    """moto's server in a child process, on ``host:port``."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout_s: float = 60.0) -> None:
        self._proc = subprocess.Popen(  # noqa: S603 - this interpreter and our module, no shell
            [
                *(sys.executable, "-m", "orderflow.emulator", "--watch-stdin"),
                *("--host", self.host, "--port", str(self.port)),
            ],
            stdin=subprocess.PIPE,  # its lifeline: end of file when this process is gone
            # A group of its own: a terminal's Ctrl-C reaches the parent only, which stops the
            # pollers and functions first and the emulator last, so none of them sees it vanish.
            process_group=0,
        )
        deadline = time.monotonic() + timeout_s
        while not _listening(self.host, self.port):
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise EmulatorError(f"moto's server exited with status {code} before it listened")
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(f"moto's server did not listen on {self.endpoint} in {timeout_s:.0f} s")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout_s``; False if it had to be killed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return False
        finally:
            if proc.stdin:
                proc.stdin.close()
        return True

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(  # type: ignore[call-overload]  # a variable service name
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def provision(
        self, bus: str, sender_email: str, functions: dict[str, tpl.Function]
    ) -> list[ConsumerQueue]:
        """Create (or find again) the bus and its archive, each consumer's queue and DLQ
        with the rules that fill it, and the SES sender."""
        events, sqs = self.client("events"), self.client("sqs")
        if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
            events.create_event_bus(Name=bus)
        # The bus's archive, as template.yaml's EventArchive (named as the bus), for replays.
        if bus not in {a["ArchiveName"] for a in events.list_archives().get("Archives", [])}:
            bus_arn = events.describe_event_bus(Name=bus)["Arn"]
            events.create_archive(ArchiveName=bus, EventSourceArn=bus_arn, RetentionDays=30)
        consumers = []
        for fn in functions.values():
            for source in fn.queues:
                attributes = {"VisibilityTimeout": str(source.visibility_timeout_s)}
                dlq = None
                if source.dlq_id and source.max_receive_count:
                    dlq = sqs.create_queue(QueueName=f"{fn.logical_id}-dlq")["QueueUrl"]
                    attributes["RedrivePolicy"] = json.dumps(
                        {"deadLetterTargetArn": _arn(sqs, dlq), "maxReceiveCount": source.max_receive_count}
                    )
                queue = sqs.create_queue(QueueName=f"{fn.logical_id}-queue", Attributes=attributes)[
                    "QueueUrl"
                ]
                queue_arn = _arn(sqs, queue)
                for rule in source.rules:
                    events.put_rule(
                        Name=rule.name,
                        EventBusName=bus,
                        EventPattern=json.dumps(rule.pattern),
                        State="ENABLED",
                    )
                    events.put_targets(
                        Rule=rule.name, EventBusName=bus, Targets=[{"Id": source.queue_id, "Arn": queue_arn}]
                    )
                consumers.append(
                    ConsumerQueue(
                        function_id=fn.logical_id,
                        rules=tuple(rule.name for rule in source.rules),
                        queue_url=queue,
                        queue_arn=queue_arn,
                        dlq_url=dlq,
                        batch_size=source.batch_size,
                        batching_window_s=source.batching_window_s,
                        max_receive_count=source.max_receive_count,
                        max_concurrency=source.max_concurrency,
                    )
                )
        ses = self.client("ses")
        ses.verify_email_identity(EmailAddress=sender_email)
        return consumers


# The changes to stock moto the emulator keeps, each only on the moto it was measured
# with (any other version runs as it is), each listed with what it buys in
# bench/README.md ("Stock moto"). ``ORDERFLOW_STOCK_MOTO=1`` turns them all off, or
# ``=name,name`` those named, to measure them.
PINNED_MOTO = "5.2.5"


def apply_pinned_moto_changes() -> list[str]:
    """Apply the changes below on moto ``PINNED_MOTO``; returns the names applied."""
    from importlib.metadata import version

    off = os.environ.get("ORDERFLOW_STOCK_MOTO", "")
    if off == "1" or version("moto") != PINNED_MOTO:
        return []
    changes = {
        "memoize_jsonpath_parse": memoize_jsonpath_parse,
        "retention_without_counting": retention_without_counting,
        "send_without_counting": send_without_counting,
    }
    skipped = set(off.split(","))
    applied = [name for name, change in changes.items() if name not in skipped]
    for name in applied:
        changes[name]()
    return applied


def memoize_jsonpath_parse() -> None:
    """Parse each JSONPath expression once instead of once per event delivered.

    moto renders every event a rule delivers (the bus archive's rule included) through
    its input template, which calls ``jsonpath_ng.ext.parse`` on eight constant
    expressions per target, and that builds a yacc parser on every call: more than
    half of the emulator's CPU under load, for the same eight answers. A parsed
    expression is immutable, so the memoized one is the same answer.
    """
    import functools

    from jsonpath_ng import ext

    if not hasattr(ext.parse, "cache_info"):
        ext.parse = functools.lru_cache(maxsize=64)(ext.parse)


def retention_without_counting() -> None:
    """Check a received message's retention period without counting the queue.

    moto checks each message it hands out against its queue's retention period through
    ``get_queue_attributes``, which builds every attribute of the queue three times,
    message counts included: O(queue length) per message received, so a consumer
    falling behind makes every receive slower. The period is one field of the queue.
    """
    from moto.core.utils import unix_time
    from moto.sqs import models

    def retention_kept(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time())

    models.SQSBackend.is_message_valid_based_on_retention_period = retention_kept  # type: ignore[method-assign]


def send_without_counting() -> None:
    """Read ``ContentBasedDeduplication`` on a send without counting the queue.

    Every message sent (each event a rule delivers) reads that one attribute through
    ``Queue.attributes``, which builds them all, message counts included: O(queue
    length) per event delivered. While a send runs, the property builds that one
    attribute only (a standard queue has none, as moto's full build would say).
    """
    import functools

    from moto.sqs import models

    if hasattr(models.Queue, "orderflow_full_attributes"):
        return
    sending = threading.local()
    full_attributes: Any = models.Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        if not getattr(sending, "active", False):
            return full_attributes.fget(self)  # type: ignore[no-any-return]
        if not self.fifo_queue:
            return {}
        value = self.content_based_deduplication
        return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}

    send_message = models.SQSBackend.send_message

    @functools.wraps(send_message)
    def send_reading_one_attribute(self: Any, *args: Any, **kwargs: Any) -> Any:
        sending.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            sending.active = False

    models.Queue.orderflow_full_attributes = full_attributes  # type: ignore[attr-defined]
    models.Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    models.SQSBackend.send_message = send_reading_one_attribute  # type: ignore[method-assign]


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def serve(host: str, port: int, watch_stdin: bool = False) -> None:
    """The child: moto's server until SIGTERM/SIGINT or, with ``watch_stdin``, the end of
    stdin (the parent gone)."""
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # moto's server logs every request through werkzeug: the functions log what matters.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    apply_pinned_moto_changes()
    done = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_parent() -> None:
        while os.read(0, 4096):
            pass
        done.set()

    if watch_stdin:
        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    # moto's server as ThreadedMotoServer builds it, but bound here, not in the serving
    # thread: a taken port ends this process at once with the reason, instead of a
    # server that never answers.
    app: Any = DomainDispatcherApplication(create_backend_app)
    profile_dir = os.environ.get("ORDERFLOW_PROFILE")
    profiles: list[Any] = []
    if profile_dir:
        app = _profiled(app, profiles)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    serving = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    serving.start()
    while not done.wait(0.5):
        pass
    server.shutdown()
    serving.join(5)
    if profile_dir and profiles:
        import pstats

        pstats.Stats(*profiles).dump_stats(os.path.join(profile_dir, "AwsEmulator.prof"))


def _profiled(app: Any, profiles: list[Any]) -> Any:
    """``app`` under cProfile in every request thread (``ORDERFLOW_PROFILE``, as the
    functions' bootstrap does), timed in CPU time: threads waiting for the GIL or a
    long poll cost nothing, so the profile shows what this process burns."""
    import cProfile

    # A free list, not one profile per thread: werkzeug may start a thread per
    # connection, and merging thousands of profiles at exit outlasted the stop's timeout.
    idle: list[Any] = []
    lock = threading.Lock()

    def wrapped(environ: Any, start_response: Any) -> Any:
        with lock:
            profile = idle.pop() if idle else None
            if profile is None:
                profile = cProfile.Profile(time.thread_time)
                profiles.append(profile)
        profile.enable()
        try:
            return list(app(environ, start_response))
        finally:
            profile.disable()
            with lock:
                idle.append(profile)

    return wrapped


def _arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m orderflow.emulator", description=serve.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--watch-stdin", action="store_true", help="stop at the end of stdin")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.watch_stdin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
