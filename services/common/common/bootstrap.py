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
from common.outbox import publish_committed
from common.publisher import EventBridgePublisher
from common.settings import Settings, get_settings

if TYPE_CHECKING:
    from common.auth import TokenVerifier


def _client(service: str, settings: Settings) -> Any:
    from botocore.config import Config

    # Short timeouts: a slow AWS call must not eat the whole Lambda timeout.
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    # Built the way boto3.client builds it, without importing boto3 (see common.aws).
    return aws.session().create_client(service, region_name=settings.aws_region, config=config)


class Container:
    def __init__(self, **parts: Any) -> None:
        # Any cached property may be given ready-made (tests, the local runtime).
        for name, value in parts.items():
            if not isinstance(getattr(type(self), name, None), cached_property):
                raise TypeError(f"unknown part {name!r}")
            self.__dict__[name] = value

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
    def publisher(self) -> EventBridgePublisher:
        self.settings.require("event_bus_name")
        assert self.settings.event_bus_name is not None
        return EventBridgePublisher(self.events_client, self.settings.event_bus_name)

    @cached_property
    def verifier(self) -> TokenVerifier:
        from common.auth import TokenVerifier  # PyJWT + cryptography: HTTP functions only

        s = self.settings
        s.require("jwks_url", "jwt_issuer", "jwt_audience")
        assert s.jwks_url and s.jwt_issuer and s.jwt_audience
        return TokenVerifier(s.jwks_url, s.jwt_issuer, s.jwt_audience)

    def publish_committed(self, outbox_ids: Sequence[int]) -> None:
        """Publish outbox rows this function has just committed, at once.

        The scheduled relay stays the safety net: if publishing fails, or the
        function has no ``EVENT_BUS_NAME``, the rows wait for it.
        """
        if not outbox_ids:
            return
        if not self.settings.event_bus_name:
            logger.warning("EVENT_BUS_NAME is not set: the outbox relay will publish")
            return
        publish_committed(self.engine, self.publisher, outbox_ids)


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
