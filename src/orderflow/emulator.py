"""The local AWS: moto's server, with the bus, rules, queues and SES identity of
template.yaml.

Each consumer's ``EventBridgeRule`` (its pattern read from the template, never
copied) targets an SQS queue that stands in for the function, with a redrive
policy to the consumer's dead-letter queue once its attempts are spent.

How many attempts: EventBridge hands an event to Lambda asynchronously, so the
rule's ``RetryPolicy`` only covers deliveries Lambda refuses (throttling, which
does not happen here). The function's own errors are retried by Lambda's
asynchronous invocation, ``EventInvokeConfig.MaximumRetryAttempts`` (2 unless
set), and then go to its on-failure destination. That is what we emulate.

moto's server runs in a process of its own (``python -m orderflow.emulator``, started
and stopped by ``Emulator``): under load it is the busiest Python in the suite, and in
the orchestrator's process it shared one GIL with the HTTP API and the queue pollers.
The child ends when its parent does, however the parent ends: it reads its stdin,
whose write end only the parent holds, and stops at end of file (as the functions'
processes do), so a SIGKILLed ``orderflow local`` leaves no emulator behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import string
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
LAMBDA_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations


def function_retries(resource: dict[str, Any] | None) -> int:
    """Lambda's retries of a failed asynchronous invocation of this function resource."""
    config = ((resource or {}).get("Properties") or {}).get("EventInvokeConfig") or {}
    value = config.get("MaximumRetryAttempts", LAMBDA_ASYNC_RETRIES)
    return int(value) if isinstance(value, int | str) else LAMBDA_ASYNC_RETRIES


@dataclass(frozen=True)
class ConsumerQueue:
    function_id: str
    rule: str
    pattern: dict[str, Any]
    max_retries: int
    queue_url: str
    dlq_url: str


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
        self,
        bus: str,
        sender_email: str,
        functions: dict[str, tpl.Function],
        resources: dict[str, Any] | None = None,
        visibility_s: int = 60,
    ) -> list[ConsumerQueue]:
        """Create (or find again) the bus, one queue + DLQ + rule per consumer, the sender.

        ``resources``: the template's, for each function's ``EventInvokeConfig``.
        """
        events, sqs = self.client("events"), self.client("sqs")
        if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
            events.create_event_bus(Name=bus)
        # The bus's archive, as template.yaml's EventArchive (named as the bus), for replays.
        if bus not in {a["ArchiveName"] for a in events.list_archives().get("Archives", [])}:
            bus_arn = events.describe_event_bus(Name=bus)["Arn"]
            events.create_archive(ArchiveName=bus, EventSourceArn=bus_arn, RetentionDays=30)
        consumers = []
        for fn in functions.values():
            for name, spec in fn.events.items():
                if spec.get("Type") != "EventBridgeRule":
                    continue
                props = spec["Properties"]
                retries = function_retries((resources or {}).get(fn.logical_id))
                rule = f"{fn.logical_id}-{name}"
                dlq = sqs.create_queue(QueueName=f"{fn.logical_id}-dlq")["QueueUrl"]
                dlq_arn = _arn(sqs, dlq)
                queue = sqs.create_queue(
                    QueueName=f"{fn.logical_id}-queue",
                    Attributes={
                        "VisibilityTimeout": str(visibility_s),
                        # the first attempt + Lambda's retries, then the DLQ
                        "RedrivePolicy": json.dumps(
                            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(retries + 1)}
                        ),
                    },
                )["QueueUrl"]
                events.put_rule(
                    Name=rule,
                    EventBusName=bus,
                    EventPattern=json.dumps(props["Pattern"]),
                    State="ENABLED",
                )
                events.put_targets(
                    Rule=rule, EventBusName=bus, Targets=[{"Id": "consumer", "Arn": _arn(sqs, queue)}]
                )
                consumers.append(ConsumerQueue(fn.logical_id, rule, props["Pattern"], retries, queue, dlq))
        ses = self.client("ses")
        ses.verify_email_identity(EmailAddress=sender_email)
        return consumers


def _spare_moto_repeated_work() -> None:
    """Costs of moto's server that are not the suite's (``bench/local.py --profile``,
    ``AwsEmulator.prof``), each the same answer computed again per event or request:

    * every event delivered to a target goes through moto's input template, which
      parses eight JSONPath expressions, and ``jsonpath_ng.ext.parse`` builds a yacc
      parser per call (0.5 ms): ~20 ms of CPU per order. The expressions never
      change and a parsed one is immutable: parse each once.
    * every request lists moto's package folder (~200 ``isdir``) to route by host:
      the folder does not change while it runs, so list it once.
    * every message received checks its queue's retention period through
      ``get_queue_attributes``, which builds all of the queue's attributes (message
      counts over the whole queue included): a third of the emulator's CPU under load.
      The period is one field of the queue: read it.
    * ``camelcase_to_underscores`` (per attribute, per action) and the response class's
      method names (``inspect.getmembers``, per request) are pure functions of
      constant names: each computed once.
    * a receipt handle is 185 letters drawn one ``random.choice`` at a time, and every
      response's request id 52: drawn as random bytes of the same (seedable) generator,
      each mapped to a letter.
    * SQS asks each message whether it is visible or delayed by computing "now" through
      datetime arithmetic (``unix_time``), per message per scan, and scans the whole
      queue (in-flight messages included) on every receive: "now" is ``time.time()``.
    * every message sent (each event a rule delivers) reads one attribute of its queue,
      ``ContentBasedDeduplication``, through ``Queue.attributes``, which counts the
      queue's messages three times over: while sending, that one attribute is built.
    * every event a rule delivers goes through moto's input template: with no input
      paths of the target's own (ours have none, nor has the archive's rule) each of the
      eight default paths is a top-level key, so it is read from the event instead of
      searched with JSONPath, and only placeholders the template holds are rendered.
    * every request finds its service by matching its host name against every
      backend's URL patterns (a few hundred regular expressions, under a lock that
      all request threads share): the answer depends on the host name only, and a
      suite's requests have a handful of them: matched once per name.
    * deleting a message scans the queue twice, building every message's list of
      receipt handles, old ones included: a handle is 185 random letters, so the
      message whose current handle it is is the one; found in one plain pass
      (moto's own scan for an older handle, or an unknown one).
    * ``put_events`` deep-copies a constant message skeleton for every rule of the bus
      and then sets every field but ``version``: a shallow copy with fresh containers
      is the same dictionary.
    """
    import functools
    import sys

    from jsonpath_ng import ext
    from moto import backends
    from moto.core import utils
    from moto.events import models as events_models
    from moto.events import utils as events_utils
    from moto.moto_api._internal import mock_random
    from moto.moto_server import werkzeug_app
    from moto.sqs import models as sqs_models

    if not hasattr(ext.parse, "cache_info"):
        ext.parse = functools.lru_cache(maxsize=256)(ext.parse)
    if not hasattr(backends.list_of_moto_modules, "cache_info"):
        backends.list_of_moto_modules = functools.lru_cache(maxsize=1)(
            functools.partial(tuple, backends.list_of_moto_modules())
        )
    dispatcher = werkzeug_app.DomainDispatcherApplication
    if not hasattr(dispatcher.get_backend_for_host, "cache_info"):
        dispatcher.get_backend_for_host = functools.lru_cache(maxsize=256)(  # type: ignore[method-assign]
            dispatcher.get_backend_for_host
        )
    if not hasattr(utils.camelcase_to_underscores, "cache_info"):
        original_case, original_names = utils.camelcase_to_underscores, utils.method_names_from_class
        cached_case = functools.lru_cache(maxsize=4096)(original_case)
        cached_names = functools.lru_cache(maxsize=1024)(lambda cls: tuple(original_names(cls)))
        # Modules import them by name, so each module already loaded gets the cached one
        # too; those moto loads later (a service's backend on its first request) import
        # it from ``moto.core.utils``, patched first.
        for module in [utils, *(m for n, m in list(sys.modules.items()) if n.startswith("moto."))]:
            if getattr(module, "camelcase_to_underscores", None) is original_case:
                setattr(module, "camelcase_to_underscores", cached_case)  # noqa: B010 - any module
            if getattr(module, "method_names_from_class", None) is original_names:
                setattr(module, "method_names_from_class", cached_names)  # noqa: B010 - any module

    def retention_kept(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return bool(queue.message_retention_period + message.sent_timestamp / 1000 > utils.unix_time())

    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = retention_kept  # type: ignore[method-assign]

    def letters(alphabet: str, k: int) -> str:
        # k random bytes of the same generator, each mapped to a letter (C speed): the
        # ids only need to be unique and random, not uniform to the last bit.
        table = _byte_tables.get(alphabet)
        if table is None:
            table = _byte_tables[alphabet] = bytes(ord(alphabet[i % len(alphabet)]) for i in range(256))
        return mock_random.randbytes(k).translate(table).decode()

    def receipt_handle() -> str:
        return letters(string.ascii_lowercase, 185)

    sqs_models.generate_receipt_handle = receipt_handle

    if not getattr(type(mock_random).get_random_string, "orderflow", False):

        def random_string(
            self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
        ) -> str:
            drawn = letters(string.ascii_letters + (string.digits if include_digits else ""), length)
            return drawn.lower() if lower_case else drawn

        random_string.orderflow = True  # type: ignore[attr-defined]
        type(mock_random).get_random_string = random_string  # type: ignore[method-assign]

    # time.time() is what unix_time() computes when given no datetime.
    original_unix_time = utils.unix_time

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else original_unix_time(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else original_unix_time(dt) * 1000.0

    for module in (sqs_models, events_models):
        module.unix_time = unix_time  # type: ignore[attr-defined]
        module.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]

    if not hasattr(sqs_models.Queue, "orderflow_full_attributes"):
        sending = threading.local()
        full_attributes: Any = sqs_models.Queue.attributes

        def attributes(self: Any) -> dict[str, Any]:
            if not getattr(sending, "active", False):
                return full_attributes.fget(self)  # type: ignore[no-any-return]
            if not self.fifo_queue:  # not among a standard queue's attributes
                return {}
            value = self.content_based_deduplication
            return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}

        send_message = sqs_models.SQSBackend.send_message

        @functools.wraps(send_message)
        def send_reading_one_attribute(self: Any, *args: Any, **kwargs: Any) -> Any:
            sending.active = True
            try:
                return send_message(self, *args, **kwargs)
            finally:
                sending.active = False

        sqs_models.Queue.orderflow_full_attributes = full_attributes  # type: ignore[attr-defined]
        sqs_models.Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
        sqs_models.SQSBackend.send_message = send_reading_one_attribute  # type: ignore[method-assign]

    skeleton: Any = events_models._BASE_EVENT_MESSAGE
    plain = all(isinstance(v, str) or (isinstance(v, list | dict) and not v) for v in skeleton.values())
    if plain and not isinstance(events_models.copy, _SkeletonCopy):
        events_models.copy = _SkeletonCopy(skeleton)  # type: ignore[assignment]

    delete_message = sqs_models.Queue.delete_message
    if not getattr(delete_message, "orderflow", False):

        def delete_by_current_handle(self: Any, receipt_handle: str) -> None:
            if receipt_handle in self.deleted_messages:
                return
            messages = self._messages
            index = next((i for i, m in enumerate(messages) if m.receipt_handle == receipt_handle), None)
            if index is None:  # an older handle of a message, or none: moto's own way
                return delete_message(self, receipt_handle)  # type: ignore[no-any-return]
            message = messages[index]
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            self._messages = messages[:index] + messages[index + 1 :]  # a new list, as moto's
            return None

        delete_by_current_handle.orderflow = True  # type: ignore[attr-defined]
        sqs_models.Queue.delete_message = delete_by_current_handle  # type: ignore[method-assign]

    template_parse = events_utils.EventTemplateParser.parse
    default_paths = events_utils.EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP
    top_level = all(path == f"$.{name}" for name, path in default_paths.items())
    if top_level and not getattr(template_parse, "orderflow", False):
        stringify = events_utils.EventTemplateParser._stringify

        def parse(input_template: Any, input_paths_map: Any, event: Any) -> Any:
            if input_paths_map:
                return template_parse(input_template, input_paths_map, event)
            template = input_template or events_utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
            for name in default_paths:
                # "$.<name>" finds event[name] when the event has it, nothing otherwise; in
                # moto's order, as a value put in may hold a later placeholder's text.
                if f"<{name}>" in template and name in event:
                    result = stringify(event[name])
                    if result:
                        template = template.replace(f"<{name}>", result)
            for name, value in (
                ("aws.events.event.json", event),
                ("aws.events.event.ingestion-time", event["ingestion-time"]),
            ):
                if f"<{name}>" in template:
                    template = template.replace(f"<{name}>", stringify(value))
            return json.loads(template)

        parse.orderflow = True  # type: ignore[attr-defined]
        events_utils.EventTemplateParser.parse = staticmethod(parse)  # type: ignore[method-assign,assignment]


_byte_tables: dict[str, bytes] = {}


class _SkeletonCopy:
    """``moto.events.models``' ``copy`` module, with ``deepcopy`` of the one constant
    skeleton (strings, an empty list, an empty dict) done as a shallow copy with
    new containers; anything else goes to ``copy.deepcopy``."""

    def __init__(self, skeleton: dict[str, Any]) -> None:
        import copy

        self._skeleton = skeleton
        self._copy = copy
        self.copy = copy.copy

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if value is self._skeleton:
            return {k: (type(v)() if isinstance(v, list | dict) else v) for k, v in value.items()}
        return self._copy.deepcopy(value, memo)


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
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # moto's server logs every request through werkzeug: the functions log what matters.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _spare_moto_repeated_work()
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
    # Bound here, not in the serving thread (as ThreadedMotoServer does): a taken port
    # ends this process at once with the reason, instead of a server that never answers.
    app: Any = DomainDispatcherApplication(create_backend_app)
    profile_dir = os.environ.get("ORDERFLOW_PROFILE")
    profiles: list[Any] = []
    if profile_dir:
        app = _profiled(app, profiles)
    server = make_server(host, port, app, threaded=True, request_handler=_keep_alive_handler())
    serving = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    serving.start()
    while not done.wait(0.5):
        pass
    server.shutdown()
    serving.join(5)
    if profile_dir and profiles:
        import pstats

        pstats.Stats(*profiles).dump_stats(os.path.join(profile_dir, "AwsEmulator.prof"))


def _keep_alive_handler() -> Any:
    """moto's request handler, keeping HTTP/1.1 connections open between requests.

    werkzeug's development server closes every connection after one response, so
    each AWS call cost a TCP connection on both sides and a thread in this process
    (botocore logs "Resetting dropped connection" before almost every request). It
    closes them because it cannot tell where an unread request body ends; here the
    body is read in full before the application runs, so the next request on the
    connection starts exactly after it.
    """
    import io

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug import serving

    class _NeverReadable:
        """werkzeug drains what is left to read after each response, assuming the
        connection then closes; with keep-alive that would swallow the next request,
        and the body was read in full already, so there is never anything to drain."""

        EVENT_READ = serving.selectors.EVENT_READ

        class DefaultSelector:
            def register(self, *_: Any) -> None:
                pass

            def select(self, timeout: float | None = None) -> list[Any]:
                return []

            def close(self) -> None:
                pass

    serving.selectors = _NeverReadable  # type: ignore[assignment]

    class KeepAliveRequestHandler(MotoRequestHandler):
        # The headers and the body go out in two writes: with Nagle's algorithm the
        # second waits for the client's delayed ACK (40 ms) on a kept-alive connection.
        disable_nagle_algorithm = True

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            length = environ.get("CONTENT_LENGTH")
            if environ.get("wsgi.input_terminated") or not length:
                # Chunked, or no body: werkzeug's own input; a body without a length
                # (HTTP/1.0 style, read to the end) cannot be followed by a request.
                if not environ.get("wsgi.input_terminated") and self.command not in ("GET", "HEAD"):
                    self.close_connection = True
                return environ
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)))
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            # werkzeug sends "Connection: close" on every response: only pass it on
            # when this connection must really end.
            if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
                return
            super().send_header(keyword, value)

    return KeepAliveRequestHandler


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
