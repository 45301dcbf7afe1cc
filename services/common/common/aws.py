"""The one botocore session of the process, that every AWS client is built from."""

from __future__ import annotations

import functools
from typing import Any

# The data loader of a session given up by ``renew``: the service models it has parsed.
_loader: Any = None


@functools.cache
def session() -> Any:
    # botocore's own session, not boto3's: any import of boto3 loads s3transfer (~130 ms
    # of cold start) that no function uses. One per process, as boto3's default session:
    # each new session parses endpoints.json and the service models again.
    import botocore.session

    new = botocore.session.get_session()
    if _loader is not None:
        new.register_component("data_loader", _loader)
    return new


@functools.cache
def rds_client(region: str | None) -> Any:
    """The client that mints the RDS Proxy's IAM auth tokens (one per session)."""
    return session().create_client("rds", region_name=region)


def renew() -> None:
    """Forget the session, its credentials and the clients built from it.

    The next ``session()`` resolves credentials afresh (SnapStart: a snapshot must not
    carry the credentials of the environment it was taken in), but keeps the service
    models the old one had loaded, which hold no secret and are costly to parse again.
    """
    global _loader
    if session.cache_info().currsize:
        _loader = session().get_component("data_loader")
    session.cache_clear()
    rds_client.cache_clear()
