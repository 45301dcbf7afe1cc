"""Powertools Logger, Metrics and Tracer, one of each per container.

Logger and Metrics are cheap to build. The Tracer needs the X-Ray SDK, which
Powertools imports eagerly and which may be absent (a trimmed layer, a laptop):
then, or when tracing is disabled, handlers get a tracer with the same decorators
that does nothing, instead of an ImportError at cold start.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

NAMESPACE = "Orderflow"

# A request that records no business metric (a GET) is normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(utc=True)
metrics = Metrics(namespace=NAMESPACE)


class NoopTracer:
    """Stands in for ``aws_lambda_powertools.Tracer`` when X-Ray is unavailable."""

    def capture_lambda_handler(self, fn: Callable[..., Any] | None = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def capture_method(self, fn: Callable[..., Any] | None = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


def _trace_disabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true")


@functools.lru_cache(maxsize=1)
def _build_tracer() -> Any:
    if _trace_disabled():
        return NoopTracer()
    try:
        from aws_lambda_powertools import Tracer

        return Tracer()
    except (ImportError, ModuleNotFoundError):
        logger.warning("aws-xray-sdk is not installed: tracing disabled")
        return NoopTracer()


tracer = _build_tracer()
