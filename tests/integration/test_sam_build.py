"""`sam build` (no container) and then every function, from the build output, with each of
its sample events: what `sam local invoke` would run, through `orderflow invoke`.

The functions run in processes of their own on the Lambda runtime's Python (``-S``: only
their code and the built layer on the path), against a real PostgreSQL and a moto server
they reach through ``AWS_ENDPOINT_URL``. The samples are run as one story (products, stock,
an order, then the events that follow it), so that each result can be checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from orderflow.migrate import SCHEMAS
from orderflow.runtime import find_python
from tests.support import jwks as jwks_support
from tests.support.aws import Bus
from tests.support.tools import tool

pytestmark = [pytest.mark.db, pytest.mark.aws]

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
RUNTIME = "python3.13"
BUS = "orderflow-build-test"
SENDER = "orders@orderflow.test"
REGION = "us-east-1"
SAMPLE_ORDER = "3f2c9a1e-5b7d-4e8a-9c61-2d4f8b0a7e15"  # the orderId every sample refers to


def sam_environment(python: str) -> dict[str, str]:
    """sam finds the runtime's interpreter on PATH (a pyenv shim would not do)."""
    path = os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="session")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = find_python(RUNTIME)
    if python is None:
        pytest.skip(f"{RUNTIME} is not installed: sam build needs it")
    sam = tool("sam")
    build_dir = tmp_path_factory.mktemp("sam-build")
    # --cached: an unchanged layer (requirements.txt) is not rebuilt by the next session.
    result = subprocess.run(
        [
            sam,
            "build",
            "--template-file",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(build_dir),
            "--cached",
            "--cache-dir",
            str(ROOT / ".aws-sam" / "test-cache"),
            "--parameter-overrides",
            "Architecture=x86_64",
        ],
        cwd=ROOT,
        env=sam_environment(python),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return build_dir / "template.yaml"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bus(moto_server: str) -> Bus:
    """The bus, with each consumer's rule from the template delivering to a queue
    (moto cannot invoke a Lambda target), and the verified SES sender."""
    import boto3

    from orderflow.template import functions

    session = boto3.Session(region_name=REGION)
    events = session.client("events", endpoint_url=moto_server)
    sqs = session.client("sqs", endpoint_url=moto_server)
    name = f"{BUS}-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=name)
    bus = Bus(events=events, sqs=sqs, name=name)
    for fid, fn in functions().items():
        for pattern in fn.rule_patterns():
            bus.route(f"{name}-{fid}", pattern)
    session.client("ses", endpoint_url=moto_server).verify_email_identity(EmailAddress=SENDER)
    return bus


@pytest.fixture
def invoke(
    built_template: Path, db: str, bus: Bus, moto_server: str, jwks: Any, mint: Any, tmp_path: Path
) -> Any:
    """invoke(function_id, sample, **edits) -> (exit status, printed result)."""
    overrides = json.loads((EVENTS / "env.json").read_text())
    overrides["Parameters"].update(
        {
            "DATABASE_URL": db,
            "AWS_ENDPOINT_URL": moto_server,
            "EVENT_BUS_NAME": bus.name,
            "JWKS_URL": jwks.url,
            "JWT_ISSUER": jwks_support.ISSUER,
            "JWT_AUDIENCE": jwks_support.AUDIENCE,
            "SENDER_EMAIL": SENDER,
        }
    )
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps(overrides))
    python = find_python(RUNTIME)
    assert python is not None

    def token_for(placeholder: str) -> str:
        # "Bearer <the output of: orderflow token --sub ID [--email ADDR] [--admin]>"
        sub = re.search(r"--sub (\S+?)[\s>]", placeholder)
        email = re.search(r"--email (\S+?)[\s>]", placeholder)
        return "Bearer " + mint(
            sub=sub.group(1) if sub else "customer-1",
            email=email.group(1) if email else None,
            scope="openid admin" if "--admin" in placeholder else "openid",
        )

    def _invoke(function_id: str, sample: str, replace: dict[str, str] | None = None) -> tuple[int, Any]:
        raw = (EVENTS / function_id / sample).read_text()
        for old, new in (replace or {}).items():
            raw = raw.replace(old, new)
        event = json.loads(raw)
        headers = event.get("headers") or {}
        if headers.get("authorization", "").startswith("Bearer <"):
            headers["authorization"] = token_for(headers["authorization"])
        event_file = tmp_path / f"{function_id}-{sample}"
        event_file.write_text(json.dumps(event))
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "orderflow.cli",
                "invoke",
                function_id,
                "--event",
                str(event_file),
                "--env-vars",
                str(env_file),
                "--template",
                str(built_template),
            ],
            cwd=ROOT,
            env=sam_environment(python),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.stdout, result.stderr[-4000:]
        return result.returncode, json.loads(result.stdout)

    return _invoke


def _http(result: tuple[int, Any]) -> tuple[int, dict[str, str], Any]:
    status, reply = result
    assert status == 0, reply
    headers = {k.lower(): v for k, v in reply.get("headers", {}).items()}
    return reply["statusCode"], headers, json.loads(reply["body"]) if reply.get("body") else None


def _rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).mappings())
    finally:
        engine.dispose()


def _adopt_sample_order_id(url: str, order_id: str) -> None:
    """Give the order just placed the id the samples refer to (a copy of it under that id)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table in ("orders", "order_items"):
                columns = [
                    c
                    for c in conn.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = 'orders' AND table_name = :t AND column_name <> 'order_id' "
                            "ORDER BY ordinal_position"
                        ),
                        {"t": table},
                    ).scalars()
                ]
                listed = ", ".join(columns)
                # the copy carries no idempotency key: the original keeps it
                chosen = ", ".join("NULL" if c in ("idempotency_key", "request_hash") else c for c in columns)
                conn.execute(
                    text(
                        f"INSERT INTO orders.{table} (order_id, {listed}) "  # noqa: S608 - our own names
                        f"SELECT CAST(:new AS uuid), {chosen} FROM orders.{table} WHERE order_id = :old"
                    ),
                    {"new": SAMPLE_ORDER, "old": order_id},
                )
    finally:
        engine.dispose()


# A consumer's answer when every record of its batch took effect.
NO_FAILURES = {"batchItemFailures": []}


def _failed(function_id: str, sample: str) -> dict[str, Any]:
    """A consumer's answer when every record of the sample failed."""
    records = json.loads((EVENTS / function_id / sample).read_text())["Records"]
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}


def test_every_sample_runs_through_its_function_from_the_build_output(invoke, db, bus):
    from orderflow.template import functions

    ran: set[tuple[str, str]] = set()

    def run(function_id: str, sample: str, **kw: Any) -> tuple[int, Any]:
        ran.add((function_id, sample))
        return invoke(function_id, sample, **kw)

    # Products (admin): the sample's SKU-1, and SKU-2 the sample order also holds.
    status, _, body = _http(run("OrdersApiFunction", "put-product.json"))
    assert (status, body) == (
        200,
        {"sku": "SKU-1", "name": "Product SKU-1", "unitPrice": "12.50", "currency": "USD"},
    )
    status, _, body = _http(
        invoke("OrdersApiFunction", "put-product.json", replace={"SKU-1": "SKU-2", "12.50": "3.99"})
    )
    assert status == 200 and body["unitPrice"] == "3.99"
    assert len(_rows(db, "SELECT * FROM orders.products")) == 2

    # Stock (admin)
    status, _, body = _http(run("InventoryApiFunction", "put-inventory.json"))
    assert status == 200 and body["sku"] == "SKU-1" and body["onHand"] == 25
    status, _, body = _http(run("InventoryApiFunction", "get-inventory.json"))
    assert status == 200 and body == {"sku": "SKU-1", "onHand": 25, "reserved": 0, "available": 25}

    # An order (customer): 201, stored with its outbox row, OrderCreated on the bus.
    status, headers, order = _http(run("OrdersApiFunction", "post-order.json"))
    assert status == 201, order
    assert headers["location"] == f"/orders/{order['orderId']}"
    assert headers["x-correlation-id"] == "sample-correlation-1"
    assert (order["status"], order["total"], order["currency"]) == ("PENDING", "28.99", "USD")
    [stored] = _rows(db, "SELECT * FROM orders.orders")
    assert str(stored["order_id"]) == order["orderId"] and stored["customer_id"] == "customer-1"
    # the same Idempotency-Key and body: the same order
    status, _, again = _http(invoke("OrdersApiFunction", "post-order.json"))
    assert (status, again["orderId"]) == (201, order["orderId"])
    assert len(_rows(db, "SELECT * FROM orders.orders")) == 1

    # The relay publishes what the API's best-effort fast path left (usually nothing:
    # a cold process on a loaded machine may spend that path's budget before its call).
    status, relayed = run("OutboxRelayFunction", "scheduled.json")
    assert status == 0 and relayed["published"] in (0, 1)
    assert (relayed["failed"], relayed["parked"]) == (0, 0)
    assert _rows(db, "SELECT count(*) AS n FROM eventing.outbox WHERE published_at IS NULL")[0]["n"] == 0
    # Either way, exactly one OrderCreated reached the bus.
    [created] = bus.drain(f"{bus.name}-InventoryFunction")
    assert created["detail-type"] == "OrderCreated" and created["detail"]["orderId"] == order["orderId"]

    # The samples' order id from here on.
    _adopt_sample_order_id(db, order["orderId"])
    status, _, body = _http(run("OrdersApiFunction", "get-order.json"))
    assert status == 200 and body["orderId"] == SAMPLE_ORDER and body["customerId"] == "customer-1"
    status, _, body = _http(run("OrdersApiFunction", "get-order-as-admin.json"))
    assert status == 200 and body["orderId"] == SAMPLE_ORDER and body["customerId"] == "customer-1"
    status, _, body = _http(run("OrdersApiFunction", "list-products.json"))
    assert status == 200 and [p["sku"] for p in body["products"]] == ["SKU-1", "SKU-2"]
    assert body["nextCursor"] is None
    status, _, body = _http(run("OrdersApiFunction", "get-product.json"))
    assert (status, body["sku"], body["unitPrice"]) == (200, "SKU-1", "12.50")
    status, _, body = _http(run("OrdersApiFunction", "list-orders.json"))
    assert status == 200 and {o["orderId"] for o in body["orders"]} == {order["orderId"], SAMPLE_ORDER}
    assert body["nextCursor"] is None

    # Consumers, with the samples' OrderCreated / InventoryReserved / ...
    status, result = run("InventoryFunction", "order-created.json")
    assert (status, result) == (0, NO_FAILURES), result
    reserved = _rows(db, "SELECT * FROM inventory.reservations WHERE order_id = :o", o=SAMPLE_ORDER)
    outcome = _rows(db, "SELECT * FROM inventory.order_outcomes WHERE order_id = :o", o=SAMPLE_ORDER)
    assert len(outcome) == 1, result
    # SKU-2 has no stock: nothing is reserved, and the failure is announced (all or none).
    assert reserved == [], reserved
    assert _rows(db, "SELECT * FROM inventory.stock WHERE sku = 'SKU-1'")[0]["reserved"] == 0

    status, result = run("NotificationsFunction", "order-created.json")
    assert (status, result) == (0, NO_FAILURES), result
    assert len(_rows(db, "SELECT * FROM notifications.emails WHERE order_id = :o", o=SAMPLE_ORDER)) == 1

    # the order was short of SKU-2: one rejection email, to the address OrderCreated recorded
    status, result = run("NotificationsFunction", "inventory-reservation-failed.json")
    assert (status, result) == (0, NO_FAILURES), result
    assert len(_rows(db, "SELECT * FROM notifications.emails WHERE order_id = :o", o=SAMPLE_ORDER)) == 2

    status, result = run("ShippingFunction", "inventory-reserved.json")
    assert (status, result) == (0, NO_FAILURES), result
    assert len(_rows(db, "SELECT * FROM shipping.shipments WHERE order_id = :o", o=SAMPLE_ORDER)) == 1

    def order_status() -> str:
        return _rows(db, "SELECT status FROM orders.orders WHERE order_id = :o", o=SAMPLE_ORDER)[0]["status"]

    status, result = run("OrderStatusFunction", "inventory-reserved.json")
    assert (status, result, order_status()) == (0, NO_FAILURES, "CONFIRMED"), result
    status, result = run("OrderStatusFunction", "shipment-requested.json")
    assert (status, result, order_status()) == (0, NO_FAILURES, "SHIPPING"), result
    status, result = run("OrderStatusFunction", "inventory-reservation-failed.json")
    assert (status, result, order_status()) == (0, NO_FAILURES, "SHIPPING"), result  # never backwards

    # Dispatch and delivery (admin), and what follows from them.
    status, _, body = _http(run("ShippingApiFunction", "get-shipment.json"))
    assert (status, body["status"], body["carrier"]) == (200, "REQUESTED", None), body
    status, _, body = _http(run("ShippingApiFunction", "dispatch.json"))
    assert (status, body["status"], body["trackingNumber"]) == (200, "DISPATCHED", "JD014600003SE"), body
    status, _, again = _http(invoke("ShippingApiFunction", "dispatch.json"))
    assert (status, again) == (200, body)  # the same body again: unchanged
    status, _, refused = _http(invoke("ShippingApiFunction", "dispatch.json", replace={"DHL": "UPS"}))
    assert status == 409, refused
    # This story's order reserved nothing (SKU-2 had no stock), so its dispatch is
    # another service's broken promise: the record fails (its queue's redrive, then the DLQ).
    status, result = run("InventoryFunction", "shipment-dispatched.json")
    assert (status, result) == (0, _failed("InventoryFunction", "shipment-dispatched.json")), result
    assert _rows(db, "SELECT on_hand, reserved FROM inventory.stock WHERE sku = 'SKU-1'") == [
        {"on_hand": 25, "reserved": 0}
    ]
    status, result = run("NotificationsFunction", "shipment-dispatched.json")
    assert (status, result) == (0, NO_FAILURES), result
    assert len(_rows(db, "SELECT * FROM notifications.emails WHERE order_id = :o", o=SAMPLE_ORDER)) == 3
    status, result = run("OrderStatusFunction", "shipment-dispatched.json")
    assert (status, result, order_status()) == (0, NO_FAILURES, "SHIPPED"), result
    status, _, body = _http(run("ShippingApiFunction", "deliver.json"))
    assert (status, body["status"]) == (200, "DELIVERED"), body
    status, result = run("OrderStatusFunction", "shipment-delivered.json")
    assert (status, result, order_status()) == (0, NO_FAILURES, "DELIVERED"), result

    # A cancellation, now too late: refused by the API, and by shipping (the goods left).
    status, _, body = _http(run("OrdersApiFunction", "cancel-order.json"))
    assert (status, body["error"]["code"]) == (409, "ORDER_NOT_CANCELLABLE"), body
    status, result = run("ShippingFunction", "order-cancellation-requested.json")
    assert (status, result) == (0, NO_FAILURES), result
    status, result = run("OrderStatusFunction", "shipment-cancellation-refused.json")
    assert (status, result, order_status()) == (0, NO_FAILURES, "DELIVERED"), result
    # a ShipmentCancelled for a delivered order contradicts it: ignored, reported, never backwards
    status, result = run("OrderStatusFunction", "shipment-cancelled.json")
    assert (status, result, order_status()) == (0, NO_FAILURES, "DELIVERED"), result
    # OrderCancelled (the samples' story had reserved nothing): nothing to release
    status, result = run("InventoryFunction", "order-cancelled.json")
    assert (status, result) == (0, NO_FAILURES), result
    status, result = run("NotificationsFunction", "order-cancelled.json")
    assert (status, result) == (0, NO_FAILURES), result
    kinds = _rows(
        db, "SELECT kind FROM notifications.emails WHERE order_id = :o ORDER BY kind", o=SAMPLE_ORDER
    )
    assert [r["kind"] for r in kinds] == ["CANCELLATION", "CONFIRMATION", "DISPATCH", "REJECTION"]

    # The migration function, as `orderflow migrate --stack` invokes it: the schemas are at
    # their heads already (the test database is migrated), so it only confirms them.
    status, result = run("MigrationFunction", "orderflow-migrate.json")
    assert (status, result) == (0, {"ok": True, "migrated": list(SCHEMAS)}), result

    every_sample = {(fid, p.name) for fid in functions() for p in (EVENTS / fid).glob("*.json")}
    assert ran == every_sample, f"samples not run: {sorted(every_sample - ran)}"
