"""One log stream for the local suite: every line tagged with its function and
the correlation id, whichever process wrote it."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from typing import TextIO

_STANDARD = {
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "correlation_id",
    "xray_trace_id",
    "sampling_rate",
}


class LogSink:
    def __init__(self, stream: TextIO = sys.stdout, json_lines: bool = False, metrics: bool = False) -> None:
        self._stream = stream
        self._json = json_lines
        self._metrics = metrics
        self._lock = threading.Lock()
        self.width = 22

    def _write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def system(self, message: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        if self._json:
            self._write(json.dumps({"function": "orderflow", "message": message}))
        else:
            self._write(f"{stamp} {'orderflow':<{self.width}} {message}")

    def function_line(self, function_id: str, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if line.strip():
                self._write(f"{'':12} {function_id:<{self.width}} | {line}")
            return
        if "_aws" in record and not self._metrics:  # an EMF metrics blob
            return
        if self._json:
            self._write(json.dumps({"function": function_id, **record}))
            return
        stamp = str(record.get("timestamp", ""))[11:23] or datetime.now().strftime("%H:%M:%S.%f")[:-3]
        cid = record.get("correlation_id") or "-"
        extra = " ".join(f"{k}={v}" for k, v in record.items() if k not in _STANDARD)
        self._write(
            f"{stamp} {function_id:<{self.width}} {record.get('level', ''):<7} [{cid}] "
            f"{record.get('message', '')}{'  ' + extra if extra else ''}"
        )
