"""The composition root: what a function needs, built once per container, lazily.

Nothing here opens a socket or imports boto3 until a handler first asks for it,
so a function pays at cold start only for the parts it uses. Tests replace any
part with ``override(...)`` instead of re-importing modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from common import aws
from common.db import make_engine
from common.observability import logger
from common.outbox.relay import publish_committed
from common.outbox.writer import forget
from common.publisher import EventBridgePublisher
from common.settings import Settings, get_settings

if TYPE_CHECKING:
    from common.auth import TokenVerifier


# (connect, read) timeouts in seconds per AWS service, with ONE attempt per call
# (botocore's ``total_max_attempts`` counts them all; ``max_attempts`` would count
# retries). PutEvents and SendEmail are not idempotent: a retried timeout can
# publish or send twice. The outbox relay (and Lambda's retries) retry instead,
# and the timeouts multiply with nothing, so one call lasts at most their sum.
CLIENT_TIMEOUTS = {"events": (0.5, 1.0), "sesv2": (1.0, 3.0), "sqs": (0.5, 1.0)}
DEFAULT_TIMEOUTS = (2.0, 5.0)
# What publishing right after a commit may spend at most, and what it leaves of
# the invocation's remaining time.
FAST_PATH_BUDGET_S = 1.8  # one PutEvents call (1.5 s at most) and two short transactions
FAST_PATH_MARGIN_S = 1.0


def call_bound_s(service: str) -> float:
    """The longest one call of ``service``'s client can take."""
    return sum(CLIENT_TIMEOUTS.get(service, DEFAULT_TIMEOUTS))


def _client(service: str, settings: Settings) -> Any:
    from botocore.config import Config

    connect, read = CLIENT_TIMEOUTS.get(service, DEFAULT_TIMEOUTS)
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=connect, read_timeout=read
    )
    # Built the way boto3.client builds it, without importing boto3 (see common.aws).
    return aws.session().create_client(service, region_name=settings.aws_region, config=config)


class Container:
    def __init__(self, **parts: Any) -> None:
        # Any cached property may be given ready-made (tests, the local runtime).
        for name, value in parts.items():
            if not isinstance(getattr(type(self), name, None), cached_property):
                raise TypeError(f"unknown part {name!r}")
            self.__dict__[name] = value

    def forget(self, *parts: str) -> None:
        """Drop the given parts if built: each is built again on first use."""
        for name in parts:
            self.__dict__.pop(name, None)

    @cached_property
    def settings(self) -> Settings:
        return get_settings()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings)

    @cached_property
    def events_client(self) -> Any:
        return _client("events", self.settings)

    @cached_property
    def ses_client(self) -> Any:
        return _client("sesv2", self.settings)

    @cached_property
    def sqs_client(self) -> Any:
        """Only for a consumer's failed records (``ChangeMessageVisibilityBatch``)."""
        return _client("sqs", self.settings)

    @cached_property
    def publisher(self) -> EventBridgePublisher:
        self.settings.require("event_bus_name")
        assert self.settings.event_bus_name is not None
        return EventBridgePublisher(
            self.events_client, self.settings.event_bus_name, call_bound_s=call_bound_s("events")
        )

    @cached_property
    def verifier(self) -> TokenVerifier:
        from common.auth import TokenVerifier  # PyJWT + cryptography: HTTP functions only

        s = self.settings
        s.require("jwks_url", "jwt_issuer", "jwt_audience")
        assert s.jwks_url and s.jwt_issuer and s.jwt_audience
        scope, group = s.admin_rule()
        return TokenVerifier(
            s.jwks_url,
            s.jwt_issuer,
            s.jwt_audience,
            admin_scope=scope,
            admin_group=group,
            emails_verified_by_issuer=s.emails_verified_by_issuer,
        )

    def publish_committed(self, outbox_ids: Sequence[int], context: Any = None) -> None:
        """Publish outbox rows this function has just committed, at once.

        Spends at most ``FAST_PATH_BUDGET_S``, and never more than the invocation's
        remaining time (``context``) minus ``FAST_PATH_MARGIN_S``. The scheduled relay
        stays the safety net: if publishing fails or has no time, or the function
        has no ``EVENT_BUS_NAME``, the rows wait for it.
        """
        if not outbox_ids:
            return
        if not self.settings.event_bus_name:
            logger.warning("EVENT_BUS_NAME is not set: the outbox relay will publish")
            forget(outbox_ids)  # their leases end, then the relay takes them
            return
        budget = FAST_PATH_BUDGET_S
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            budget = min(budget, remaining() / 1000 - FAST_PATH_MARGIN_S)
        publish_committed(self.engine, self.publisher, outbox_ids, budget_s=budget)


_container: Container | None = None


def container() -> Container:
    """The container's parts (one per Lambda execution environment)."""
    global _container
    if _container is None:
        _container = Container()
    return _container


def override(**parts: Any) -> Container:
    """Start over with the given parts (the rest built lazily as usual)."""
    global _container
    if _container is not None and "engine" in _container.__dict__ and "engine" not in parts:
        _container.engine.dispose()
    _container = Container(**parts)
    return _container
