"""One database role per service, and every right it has: the one place to read them.

``orderflow migrate`` applies this after every schema's migrations, each time it runs,
so tables added by later migrations are covered (and ``ALTER DEFAULT PRIVILEGES``
covers tables the migrating user creates in a service's schema in between).

* A service's role may read and write its own schema, and nothing of another's.
* In ``eventing`` it may add and mark its own outbox rows (row-level security on
  ``source``: it cannot write, read or mark an event of another service's source) and
  keep its consumer's record of processed events (row-level security on ``consumer``:
  it reads and marks only its own consumer's events, and deletes none, so no service can
  make another skip an event or handle one twice).
* The relay's role reads, claims, marks and prunes every service's outbox rows, prunes
  old processed-event marks, and nothing else.

Roles are cluster-wide in PostgreSQL while the rights are per database: creating a role
tolerates another session creating it at the same moment, and nothing here drops one.
In AWS the roles log in with IAM tokens (``rds_iam``, granted when that role exists);
locally they need no password (trust authentication).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class ServiceRole:
    name: str
    schema: str | None  # the schema it owns (read and write)
    source: str | None  # the event source it publishes as (its outbox rows)
    consumer: str | None  # its consumer's name in eventing.processed_events
    processed_events: tuple[str, ...] = ("SELECT", "INSERT")
    outbox: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE")
    every_source: bool = False  # the relay: every service's rows


ROLES: tuple[ServiceRole, ...] = (
    # OrderStatusFunction connects as orders: its consumer is the order's status.
    ServiceRole("orders", "orders", "orders.service", "order-status"),
    ServiceRole("inventory", "inventory", "inventory.service", "inventory"),
    ServiceRole("notifications", "notifications", None, "notifications", outbox=()),  # publishes nothing
    ServiceRole("shipping", "shipping", "shipping.service", "shipping"),
    ServiceRole(
        "outbox_relay",
        None,
        None,
        None,
        # It prunes processed-event marks past their retention (common.outbox.admin.prune).
        processed_events=("SELECT", "DELETE"),
        outbox=("SELECT", "UPDATE", "DELETE"),
        every_source=True,
    ),
)
ROLE_OF_SERVICE = {role.name: role for role in ROLES}
# The role each function of template.yaml connects as (orderflow local; DB_USER in AWS).
FUNCTION_ROLES = {
    "OrdersApiFunction": "orders",
    "OrderStatusFunction": "orders",
    "OutboxRelayFunction": "outbox_relay",
    "InventoryFunction": "inventory",
    "InventoryApiFunction": "inventory",
    "NotificationsFunction": "notifications",
    "ShippingFunction": "shipping",
    "ShippingApiFunction": "shipping",
}
OWN_SCHEMA_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"


def url_for_role(url: str, role: str) -> str:
    """``url`` logging in as ``role`` instead (no password: trust, or IAM in AWS)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_role(conn: Connection, name: str) -> None:
    # Another session (another database on this server) may create it at the same moment.
    conn.execute(
        text(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN "
            f"CREATE ROLE {_ident(name)} LOGIN NOINHERIT; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    )
    conn.execute(
        text(
            "DO $$ BEGIN "
            "IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') "
            f"AND NOT pg_has_role('{name}', 'rds_iam', 'MEMBER') THEN "
            f"GRANT rds_iam TO {_ident(name)}; END IF; "
            "EXCEPTION WHEN unique_violation THEN NULL; END $$"
        )
    )


def apply(conn: Connection) -> list[str]:
    """Create the roles if need be and (re)grant their rights; returns the role names."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('orderflow:roles'))"))
    outbox_policies, processed_policies = [], []
    for role in ROLES:
        _create_role(conn, role.name)
        r = _ident(role.name)
        if role.schema:
            s = _ident(role.schema)
            conn.execute(text(f"GRANT USAGE ON SCHEMA {s} TO {r}"))
            conn.execute(text(f"GRANT {OWN_SCHEMA_RIGHTS} ON ALL TABLES IN SCHEMA {s} TO {r}"))
            conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}"))
            conn.execute(
                text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT {OWN_SCHEMA_RIGHTS} ON TABLES TO {r}")
            )
            conn.execute(
                text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {r}")
            )
        if role.outbox or role.processed_events:
            conn.execute(text(f"GRANT USAGE ON SCHEMA eventing TO {r}"))
        if role.outbox:
            conn.execute(text(f"GRANT {', '.join(role.outbox)} ON eventing.outbox TO {r}"))
            if "INSERT" in role.outbox:
                conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA eventing TO {r}"))
            condition = "true" if role.every_source else f"source = '{role.source}'"
            outbox_policies.append((role.name, condition))
        if role.processed_events:
            # Rights granted before (DELETE, to a service, in earlier releases) are taken back.
            conn.execute(text(f"REVOKE ALL ON eventing.processed_events FROM {r}"))
            conn.execute(
                text(f"GRANT {', '.join(role.processed_events)} ON eventing.processed_events TO {r}")
            )
            condition = "true" if role.every_source else f"consumer = '{role.consumer}'"
            processed_policies.append((role.name, condition))
    for table, policies in (("outbox", outbox_policies), ("processed_events", processed_policies)):
        conn.execute(text(f"ALTER TABLE eventing.{table} ENABLE ROW LEVEL SECURITY"))
        for name, condition in policies:
            policy = _ident(f"{name}_rows")
            conn.execute(text(f"DROP POLICY IF EXISTS {policy} ON eventing.{table}"))
            conn.execute(
                text(
                    f"CREATE POLICY {policy} ON eventing.{table} TO {_ident(name)} "
                    f"USING ({condition}) WITH CHECK ({condition})"
                )
            )
    return [role.name for role in ROLES]
