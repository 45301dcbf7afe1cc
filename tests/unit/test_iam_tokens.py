"""The RDS Proxy path mints each connection's IAM token with the process's current
credentials, also for an engine built before they changed (a SnapStart restore)."""

from __future__ import annotations

from typing import Any

from common import aws
from common.db import make_engine
from common.settings import Settings


def _token_for_next_connection(engine: Any) -> str:
    params: dict[str, Any] = {}
    for listener in engine.dialect.dispatch.do_connect:
        listener(engine.dialect, None, [], params)
    return str(params["password"])


def test_an_engine_built_before_a_restore_mints_tokens_with_the_restored_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPUBLISHING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "publishing-secret")
    aws.renew()
    settings = Settings.from_env(
        {
            "DB_HOST": "proxy.example",
            "DB_NAME": "orderflow",
            "DB_USER": "orderflow_app",
            "AWS_REGION": "eu-west-1",
        }
    )
    engine = make_engine(settings)
    # The token is a presigned URL naming the credentials that signed it
    assert "X-Amz-Credential=AKIDPUBLISHING" in _token_for_next_connection(engine)

    # When the credentials change and the session is renewed (common.snapstart, after a restore)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDRESTORED")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "restored-secret")
    aws.renew()

    # Then the same engine's next connection gets a token of the new credentials
    token = _token_for_next_connection(engine)
    assert token.startswith("proxy.example:5432/?Action=connect")
    assert "X-Amz-Credential=AKIDRESTORED" in token
    aws.renew()
