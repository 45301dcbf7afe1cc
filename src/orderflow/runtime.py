"""Runs template.yaml's functions locally, each in a process of its own.

A ``FunctionProcess`` is one warm Lambda container: started once (its cold start),
then invoked any number of times, one invocation at a time. ``orderflow invoke``
uses one for a single event; ``orderflow local`` keeps one per function.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow import template as tpl

BOOTSTRAP = Path(__file__).resolve().parent / "lambda_bootstrap" / "bootstrap.py"
PASSED_THROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "ORDERFLOW_PROFILE",  # bootstrap.py: cProfile each invocation (bench/local.py --profile)
)


class InvokeError(RuntimeError):
    """The function raised (or could not start); carries Lambda's error shape."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        self.payload = payload


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    paths: list[Path]  # the function's code first, then its layers
    environment: dict[str, str]
    timeout_s: float = 30.0
    memory_mb: int = 512
    runtime: str = "python3.13"


def _layer_path(root: Path) -> Path:
    # A built layer holds its packages under python/ (Lambda's /opt/python).
    return root / "python" if (root / "python").is_dir() else root


def resolve(
    value: Any,
    parameters: dict[str, str],
    resources: dict[str, Any],
    conditions: dict[str, Any] | None = None,
) -> str | None:
    """A template value as a string (``!Ref``, ``!If`` on ``!Equals`` conditions); None if
    it cannot be resolved locally."""
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if name in parameters:
            return parameters[name]
        if name in resources:
            return name  # as sam local does: a resource's logical id stands for it
    if isinstance(value, dict) and set(value) == {"Fn::If"} and conditions is not None:
        name, when_true, when_false = value["Fn::If"]
        test = conditions.get(name, {}).get("Fn::Equals")
        if test is not None:
            left, right = (resolve(v, parameters, resources, conditions) for v in test)
            return resolve(when_true if left == right else when_false, parameters, resources, conditions)
    return None


def spec_for(
    logical_id: str,
    template_path: Path = tpl.TEMPLATE,
    overrides: dict[str, Any] | None = None,
) -> FunctionSpec:
    """How to run ``logical_id``: its code, layers and environment from the template.

    ``overrides`` has ``sam local invoke --env-vars`` shape:
    ``{"Parameters": {...for every function...}, "<LogicalId>": {...}}``.
    """
    doc = tpl.load(template_path)
    functions = tpl.functions(template_path)
    if logical_id not in functions:
        known = ", ".join(sorted(functions))
        raise KeyError(f"no function {logical_id!r} in {template_path} (functions: {known})")
    fn = functions[logical_id]
    resources = doc["Resources"]
    parameters = {name: str(p["Default"]) for name, p in doc.get("Parameters", {}).items() if "Default" in p}
    env: dict[str, str] = {}
    for name, value in fn.environment.items():
        resolved = resolve(value, parameters, resources, doc.get("Conditions", {}))
        if resolved is not None:
            env[name] = resolved
    overrides = overrides or {}
    # Unlike sam local, variables the template does not declare may be given too.
    env.update({k: str(v) for k, v in overrides.get("Parameters", {}).items()})
    env.update({k: str(v) for k, v in overrides.get(logical_id, {}).items()})

    layer_paths = []
    for layer in fn.layers:
        if isinstance(layer, dict) and "Ref" in layer and layer["Ref"] in resources:
            content = resources[layer["Ref"]]["Properties"]["ContentUri"]
            layer_paths.append(_layer_path(template_path.parent / content))
    props = resources[logical_id]["Properties"]
    globals_ = doc.get("Globals", {}).get("Function", {})
    return FunctionSpec(
        logical_id=logical_id,
        handler=fn.handler,
        paths=[fn.code_uri, *layer_paths],
        environment=env,
        timeout_s=float(props.get("Timeout", globals_.get("Timeout", 3))),
        memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
        runtime=str(props.get("Runtime", globals_.get("Runtime", "python3.13"))),
    )


def is_build_output(template_path: Path) -> bool:
    """True for a ``sam build`` output's template (wherever ``--build-dir`` put it): its
    functions must then run on their own runtime, with nothing but their code and layers."""
    if template_path.resolve().parent.parent.name == ".aws-sam":
        return True
    resources = tpl.load(template_path).get("Resources", {})
    # sam build marks every resource it built with its original logical id.
    return any("SamResourceId" in (r.get("Metadata") or {}) for r in resources.values())


def find_python(runtime: str) -> str | None:
    """An interpreter for a Lambda runtime name such as ``python3.13``, if installed."""
    version = runtime.removeprefix("python")
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{version}*/bin/python{version}"))
    for candidate in candidates:
        if (
            candidate
            and subprocess.run(  # noqa: S603 - an interpreter path we found, no shell
                [candidate, "-c", "pass"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return candidate
    return None


@dataclass
class FunctionProcess:
    """One local Lambda container of ``spec``."""

    spec: FunctionSpec
    python: str = sys.executable
    isolated: bool = False  # True: no site-packages at all, only code and layers (like Lambda)
    on_log: Callable[[str], None] | None = None  # each stderr line; None: inherit stderr
    init_ms: float | None = None
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    _replies: queue.Queue[str] = field(default_factory=queue.Queue, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        env.update(self.spec.environment)
        env.setdefault("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1"))
        env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.spec.logical_id,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.spec.runtime}",
                "LAMBDA_TASK_ROOT": str(self.spec.paths[0]),
                "_HANDLER": self.spec.handler,
                "TZ": ":UTC",
                "PYTHONUNBUFFERED": "1",
                "ORDERFLOW_HANDLER": self.spec.handler,
                "ORDERFLOW_PATHS": os.pathsep.join(str(p) for p in self.spec.paths),
                "ORDERFLOW_FUNCTION": self.spec.logical_id,
                "ORDERFLOW_TIMEOUT": str(self.spec.timeout_s),
                "ORDERFLOW_MEMORY": str(self.spec.memory_mb),
            }
        )
        return env

    def start(self) -> float:
        """Start the container and import the handler (its cold start); returns init ms."""
        args = [self.python, *(["-S"] if self.isolated else []), str(BOOTSTRAP)]
        self._proc = subprocess.Popen(  # noqa: S603 - our bootstrap under a chosen interpreter, no shell
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if self.on_log else None,
            env=self._environment(),
            text=True,
            bufsize=1,
            # A group of its own: a terminal's Ctrl-C goes to the parent, which ends the
            # container (closing its stdin) after the invocation in flight, as Lambda
            # would; the function is never interrupted half-way with a KeyboardInterrupt.
            process_group=0,
        )
        # One reader for the container's life (not a thread per invocation); its own
        # queue, so a dead container's last words never answer the next one's request.
        self._replies = queue.Queue()
        threading.Thread(target=self._pump_replies, args=(self._proc, self._replies), daemon=True).start()
        if self.on_log:
            threading.Thread(target=self._pump_logs, daemon=True).start()
        hello = self._read_reply(timeout=max(self.spec.timeout_s, 30.0))
        if not hello.get("init"):
            self.stop()
            raise InvokeError(hello)
        self.init_ms = float(hello["initMs"])
        return self.init_ms

    def _pump_logs(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None and self.on_log
        for line in self._proc.stderr:
            self.on_log(line.rstrip("\n"))

    @staticmethod
    def _pump_replies(proc: subprocess.Popen[str], replies: queue.Queue[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            replies.put(line)
        replies.put("")  # end of file: the process exited

    def _read_reply(self, timeout: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            return {
                "init": False,
                "ok": False,
                "errorType": "TimeoutError",
                "errorMessage": f"Task timed out after {timeout:.2f} seconds",
            }
        if not line:
            code = self._proc.wait()
            self._proc = None
            return {
                "init": False,
                "ok": False,
                "errorType": "Runtime.ExitError",
                "errorMessage": f"the function's process exited with status {code}",
            }
        return json.loads(line)  # type: ignore[no-any-return]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """Run one event; returns the handler's result or raises ``InvokeError``."""
        with self._lock:
            if not self.running:
                self.start()
            assert self._proc is not None and self._proc.stdin is not None
            request = {"event": event, "requestId": request_id or str(uuid.uuid4())}
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            reply = self._read_reply(timeout=self.spec.timeout_s + 1)
        if not reply.get("ok"):
            raise InvokeError(reply)
        return reply["result"]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
