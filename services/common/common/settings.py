"""Configuration as a model, read from the environment once per container."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class ConfigurationError(RuntimeError):
    """A setting a function needs is missing or malformed."""


class Settings(BaseModel):
    """Every variable of the contract's configuration table.

    Each function reads only the fields it uses; ``require`` names what is missing.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    db_host: str | None = Field(default=None, alias="DB_HOST")
    db_port: int = Field(default=5432, alias="DB_PORT")
    db_name: str | None = Field(default=None, alias="DB_NAME")
    db_user: str | None = Field(default=None, alias="DB_USER")
    aws_region: str | None = Field(default=None, alias="AWS_REGION")
    event_bus_name: str | None = Field(default=None, alias="EVENT_BUS_NAME")
    jwks_url: str | None = Field(default=None, alias="JWKS_URL")
    jwt_issuer: str | None = Field(default=None, alias="JWT_ISSUER")
    jwt_audience: str | None = Field(default=None, alias="JWT_AUDIENCE")
    admin_scope: str = Field(default="admin", min_length=1, alias="ADMIN_SCOPE")
    admin_group: str = Field(default="admin", min_length=1, alias="ADMIN_GROUP")
    sender_email: str | None = Field(default=None, alias="SENDER_EMAIL")
    service_name: str = Field(default="orderflow", alias="POWERTOOLS_SERVICE_NAME")
    # Every connection's server-side limits (milliseconds; 0 disables), so that no bug
    # can pin a proxy connection for minutes.
    db_statement_timeout_ms: int = Field(default=10_000, ge=0, alias="DB_STATEMENT_TIMEOUT_MS")
    db_lock_timeout_ms: int = Field(default=5_000, ge=0, alias="DB_LOCK_TIMEOUT_MS")
    db_idle_in_transaction_timeout_ms: int = Field(
        default=10_000, ge=0, alias="DB_IDLE_IN_TRANSACTION_TIMEOUT_MS"
    )
    # Retention of published outbox rows and consumers' processed-event marks: past the
    # bus archive's 30 days plus EventBridge's 24 h of retries, so that a replay from the
    # archive is still recognised as a duplicate.
    outbox_retention_days: float = Field(default=32, gt=0, alias="OUTBOX_RETENTION_DAYS")
    processed_events_retention_days: float = Field(default=32, gt=0, alias="PROCESSED_EVENTS_RETENTION_DAYS")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        # Empty strings mean "unset", as SAM passes them for blank parameters.
        return cls.model_validate({k: v for k, v in env.items() if k in names and v != ""})

    def require(self, *fields: str) -> None:
        missing = [self.model_fields[f].alias or f for f in fields if getattr(self, f) in (None, "")]
        if missing:
            raise ConfigurationError(f"missing configuration: {', '.join(missing)}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, read on first use."""
    return Settings.from_env()
