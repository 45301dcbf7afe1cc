"""Configuration as a model, read from the environment once per container."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class ConfigurationError(RuntimeError):
    """A setting a function needs is missing or malformed."""


EMPTY_MEANS_NONE = frozenset({"ADMIN_SCOPE", "ADMIN_GROUP"})


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
    # What makes a caller admin. Unset: ``admin`` (the local suite, the contract's default);
    # set but empty: that way grants nothing (template.yaml sets both, and with an external
    # issuer takes them from AdminScope/AdminGroup, one of which must be given).
    admin_scope: str = Field(default="admin", alias="ADMIN_SCOPE")
    admin_group: str = Field(default="admin", alias="ADMIN_GROUP")
    # Whether a token's email may be trusted without ``email_verified: true``: only for an
    # issuer that verifies every address itself and leaves the claim out.
    emails_verified_by_issuer: bool = Field(default=False, alias="EMAILS_VERIFIED_BY_ISSUER")
    # The origin browsers may call the API from (template.yaml's CorsAllowOrigin).
    cors_allow_origin: str = Field(default="*", min_length=1, alias="CORS_ALLOW_ORIGIN")
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
        # Empty strings mean "unset", as SAM passes them for blank parameters; except for the
        # admin rule, where empty means "not this way" (an unset one falls back to ``admin``).
        return cls.model_validate(
            {k: v for k, v in env.items() if k in names and (v != "" or k in EMPTY_MEANS_NONE)}
        )

    def admin_rule(self) -> tuple[str | None, str | None]:
        """(scope, group) that make a caller admin, ``None`` for a way that grants nothing."""
        scope, group = self.admin_scope.strip() or None, self.admin_group.strip() or None
        if scope is None and group is None:
            raise ConfigurationError(
                "ADMIN_SCOPE and ADMIN_GROUP are both empty: nobody could be recognised as an admin."
                " Set one of them (template.yaml: the AdminScope or AdminGroup parameter) to the scope"
                " or group your token issuer grants administrators"
            )
        return scope, group

    def require(self, *fields: str) -> None:
        missing = [self.model_fields[f].alias or f for f in fields if getattr(self, f) in (None, "")]
        if missing:
            raise ConfigurationError(f"missing configuration: {', '.join(missing)}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, read on first use."""
    return Settings.from_env()
