"""Lambda SnapStart: what a snapshot may carry, and what each restored copy renews.

With SnapStart (template.yaml's ``SnapStart`` parameter) Lambda runs a version's init
once, when the version is published, snapshots the environment's memory, and starts
later environments from that snapshot: many copies of it, maybe days later. So:

* Before the snapshot, do the work every cold start would otherwise repeat: build the
  validators pydantic defers (``defer_build``), compile the statements every
  transaction runs, parse the AWS service models, import the database driver, PyJWT
  and cryptography. Then hold no connection: the engine's pool is emptied.
* After each restore: a new pool, a new botocore session (credentials resolved in
  the restored environment, not the publishing one) and new clients from it, and a
  reseeded ``random`` (every copy would otherwise draw the same retry jitter).
  ``uuid.uuid4`` reads ``os.urandom`` on every call: nothing to renew.

Never in a snapshot: connections, credentials, IAM auth tokens (``common.db`` mints
one per connection), the JWKS (keys rotate; it is fetched on the first request, as
without SnapStart).

Every handler module calls ``register`` at import. Lambda's Python runtime (3.12+)
brings ``snapshot_restore_py``, so the layer must not ship it; anywhere else
registration is skipped. Registering costs two list appends, SnapStart on or off: the
hooks run only when Lambda takes or restores a snapshot.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine

from common import aws
from common.events import CamelModel
from common.observability import logger

# The container's parts built from AWS credentials: rebuilt on first use after a restore.
AWS_PARTS = ("events_client", "ses_client", "sqs_client", "publisher")
# Stand-in credentials for the clients built only to load their service's data: the
# real ones must not be resolved before the snapshot.
_NO_CREDENTIALS = {"aws_access_key_id": "snapshot", "aws_secret_access_key": "snapshot"}

_services: set[str] = set()
_registered = False


def register(*, services: Sequence[str] = ()) -> bool:
    """Register the hooks (once per process); ``services``: the AWS APIs the function calls.

    Returns whether they were registered, i.e. whether ``snapshot_restore_py`` is there.
    """
    global _registered
    _services.update(services)
    if _registered:
        return True
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    _registered = True
    return True


def before_snapshot() -> None:
    from common import inbox
    from common.bootstrap import container
    from common.outbox import relay, writer

    deps = container()
    primed: dict[str, Any] = {}
    try:
        primed["models"] = prime_models()
        primed["statements"] = prime_statements(
            deps.engine, writer.PRIMED_STATEMENTS + inbox.PRIMED_STATEMENTS + relay.PRIMED_STATEMENTS
        )
        services = set(_services) | ({"rds"} if not deps.settings.database_url else set())
        primed["services"] = prime_aws(sorted(services), deps.settings.aws_region)
        if deps.settings.jwks_url:
            _ = deps.verifier  # imports PyJWT and cryptography; fetches no key
            primed["verifier"] = True
    except Exception:
        # A priming failure costs only the time it would have saved: the snapshot (and
        # the deployment publishing it) goes ahead, and the first request does the rest.
        logger.exception("SnapStart: priming failed", extra=primed)
    finally:
        if "engine" in deps.__dict__:
            deps.engine.dispose()
        # Whatever init may have built with the publishing environment's credentials.
        deps.forget(*AWS_PARTS)
        aws.renew()
    logger.info("SnapStart: primed for the snapshot", extra=primed)


def after_restore() -> None:
    from common.bootstrap import container

    random.seed()  # from os.urandom
    aws.renew()
    deps = container()
    deps.forget(*AWS_PARTS)
    if "engine" in deps.__dict__:
        # A new pool on the same engine, which keeps its compiled statements. close=False:
        # a connection that slipped into the snapshot is shared by every copy; none of
        # them may close it for the others.
        deps.engine.dispose(close=False)


def prime_models(base: type[BaseModel] = CamelModel) -> list[str]:
    """Build every deferred validator of ``base``'s imported subclasses; their names."""
    built = []
    pending: list[type[BaseModel]] = [base]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if not model.__pydantic_complete__:
            model.model_rebuild()
            built.append(model.__name__)
    return built


def prime_statements(engine: Engine, statements: Iterable[tuple[Any, Sequence[str]]]) -> int:
    """Compile ``statements`` into ``engine``'s statement cache, as ``execute`` would."""
    from sqlalchemy.sql import compiler

    dialect, cache = engine.dialect, engine._compiled_cache
    if cache is None:  # query_cache_size=0
        return 0
    # SQLAlchemy has no public way to fill the cache without executing: this is the call
    # Connection.execute makes (a parameter set's names, sorted, are part of its key).
    for statement, names in statements:
        statement._compile_w_cache(
            dialect=dialect,
            compiled_cache=cache,
            column_keys=sorted(names),
            for_executemany=False,
            schema_translate_map=None,
            linting=dialect.compiler_linting | compiler.WARN_LINTING,
        )
    return len(cache)


def prime_aws(services: Iterable[str], region: str | None) -> list[str]:
    """Load each service's model, endpoint rules and retry data into the session."""
    names, session = list(services), aws.session()
    for name in names:
        session.create_client(name, region_name=region, **_NO_CREDENTIALS)
    return names
