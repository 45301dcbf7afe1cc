"""Size of each built function and of the layer, and each function's cold start from the
build output, as ``orderflow invoke`` runs it (a fresh process on the runtime's Python with
``-S``, then its first event).

    .venv/bin/python bench/build_sizes.py [--build-dir DIR] [--runs 3]

Builds with ``sam build`` (no container) into DIR (default: a temporary folder) unless
DIR already holds a build. Cold starts run against a real PostgreSQL (``DATABASE_URL``'s
server, else an embedded one), a moto server and a loopback JWKS, as the tests do.
Prints a Markdown table on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # tests.support: the same PostgreSQL and JWKS helpers as the tests

for _k, _v in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ[_k] = _v  # moto only: these never leave loopback
os.environ.pop("AWS_PROFILE", None)

RUNTIME = "python3.13"
SENDER = "orders@orderflow.test"


def say(message: str) -> None:
    print(f"[build_sizes {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def zipped_bytes(path: Path) -> int:
    """What Lambda is sent: the folder as a deflated zip (as sam package makes it)."""
    with tempfile.TemporaryFile() as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(path.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(path))
        return f.tell()


def pyc_files(path: Path) -> int:
    return sum(1 for _ in path.rglob("*.pyc"))


def mib(n: int) -> str:
    return f"{n / 1024 / 1024:.2f}" if n >= 100 * 1024 else f"{n / 1024 / 1024:.3f}"


def build(build_dir: Path, python: str) -> Path:
    template = build_dir / "template.yaml"
    if template.exists():
        say(f"using the build in {build_dir}")
        return template
    sam = shutil.which("sam") or str(Path(sys.executable).parent / "sam")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(python).parent), os.environ["PATH"]]),
        "SAM_CLI_TELEMETRY": "0",
    }
    say(f"sam build into {build_dir}")
    started = time.perf_counter()
    subprocess.run(
        [
            sam,
            "build",
            "--build-dir",
            str(build_dir),
            "--cached",
            "--cache-dir",
            str(ROOT / ".aws-sam" / "test-cache"),
            "--parameter-overrides",
            "Architecture=x86_64",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    say(f"built in {time.perf_counter() - started:.1f} s")
    return template


def first_event(function_id: str, mint: Any) -> dict[str, Any]:
    sample = sorted((ROOT / "events" / function_id).glob("*.json"))[0]
    say(f"{function_id}: {sample.name}")
    event = json.loads(sample.read_text())
    headers = event.get("headers") or {}
    placeholder = headers.get("authorization", "")
    if placeholder.startswith("Bearer <"):
        sub = re.search(r"--sub (\S+?)[\s>]", placeholder)
        headers["authorization"] = "Bearer " + mint(
            sub=sub.group(1) if sub else "customer-1",
            scope="openid admin" if "--admin" in placeholder else "openid",
        )
    return event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path)
    parser.add_argument("--runs", type=int, default=3, help="cold starts per function (median shown)")
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    from orderflow.runtime import FunctionProcess, InvokeError, find_python, spec_for
    from orderflow.template import functions
    from tests.support import jwks as jwks_support
    from tests.support.postgres import fresh_database, server_url

    python = find_python(RUNTIME)
    if python is None:
        print(f"{RUNTIME} is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="orderflow-build-") as tmp:
        template = build(args.build_dir or Path(tmp) / "build", python)
        root = template.parent
        fids = sorted(functions(template))

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        endpoint = "http://{}:{}".format(*moto.get_host_and_port())
        boto3.client("events", endpoint_url=endpoint).create_event_bus(Name="orderflow-bench")
        boto3.client("ses", endpoint_url=endpoint).verify_email_identity(EmailAddress=SENDER)
        jwks = jwks_support.JwksServer(keys={"k1": jwks_support.new_key()}).start()

        def mint(**claims: Any) -> str:
            return jwks_support.mint(jwks.keys["k1"], "k1", **claims)

        rows = []
        try:
            with server_url() as base, fresh_database(base) as url:
                overrides = {
                    "Parameters": {
                        **json.loads((ROOT / "events/env.json").read_text())["Parameters"],
                        "DATABASE_URL": url,
                        "AWS_ENDPOINT_URL": endpoint,
                        "EVENT_BUS_NAME": "orderflow-bench",
                        "JWKS_URL": jwks.url,
                        "JWT_ISSUER": jwks_support.ISSUER,
                        "JWT_AUDIENCE": jwks_support.AUDIENCE,
                        "SENDER_EMAIL": SENDER,
                        # Lambda's /var/task and /opt are read-only: a run must not leave a
                        # __pycache__ in the build output that the next cold start would use.
                        "PYTHONDONTWRITEBYTECODE": "1",
                    }
                }
                shipped = pyc_files(root)
                for fid in fids:
                    spec = spec_for(fid, template, overrides)
                    inits, firsts, totals, outcome = [], [], [], "ok"
                    for _ in range(args.runs):
                        process = FunctionProcess(spec, python=python, isolated=True, on_log=lambda _l: None)
                        started = time.perf_counter()
                        try:
                            inits.append(process.start())
                            before = time.perf_counter()
                            try:
                                reply = process.invoke(first_event(fid, mint))
                                if isinstance(reply, dict) and "statusCode" in reply:
                                    outcome = f"HTTP {reply['statusCode']}"
                            except InvokeError as exc:  # a handled failure (e.g. unknown order)
                                outcome = str(exc.payload.get("errorType"))
                            done = time.perf_counter()
                        finally:
                            process.stop()
                        firsts.append((done - before) * 1000)
                        totals.append((done - started) * 1000)
                    code = root / fid
                    rows.append(
                        (
                            fid,
                            tree_bytes(code),
                            zipped_bytes(code),
                            statistics.median(inits),
                            statistics.median(firsts),
                            statistics.median(totals),
                            outcome,
                        )
                    )
                    say(f"{fid}: init {rows[-1][3]:.0f} ms, first event {rows[-1][4]:.0f} ms")
        finally:
            jwks.stop()
            moto.stop()

        if pyc_files(root) != shipped:
            raise RuntimeError(f"the runs wrote bytecode into {root}: the cold starts are not Lambda's")
        layer = root / "CommonLayer"
        print(
            f"Build output of template.yaml ({RUNTIME}, x86_64); cold start = median of {args.runs} "
            "fresh processes (`orderflow invoke`'s way: runtime Python with -S, code + layer only, no "
            "bytecode written, as on Lambda's read-only file system).\n"
        )
        print(
            "| artifact | unzipped MiB | zipped MiB | init (import) ms | first event ms "
            "| process start to reply ms | first event (on an empty database) |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        print(
            f"| CommonLayer ({pyc_files(layer)} .pyc) | {mib(tree_bytes(layer))} "
            f"| {mib(zipped_bytes(layer))} | | | | |"
        )
        for fid, size, zipped, init, first, total, outcome in rows:
            print(
                f"| {fid} | {mib(size)} | {mib(zipped)} | {init:.0f} | {first:.0f} | {total:.0f} "
                f"| {outcome} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
