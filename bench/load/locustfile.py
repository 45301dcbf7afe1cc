"""A load test of the HTTP API: customers ordering, reading and cancelling, a warehouse
dispatching and delivering, against ``orderflow local`` or a deployed stack.

    # the local suite started from this folder (./dev run): tokens minted from its state folder
    .venv/bin/locust -f bench/load/locustfile.py --headless -u 20 -r 4 -t 2m
    # a deployed stack: its API URL and Cognito pool from its outputs; test users created
    # at the start and deleted at the end (AWS credentials and region as for the AWS CLI)
    .venv/bin/locust -f bench/load/locustfile.py --headless -u 20 -r 4 -t 2m \
        --orderflow-stack orderflow-staging

The mix (bench/load/README.md says why): per customer, place an order 5 : read one of
theirs 4 : list theirs 3 : cancel one 1; one warehouse user for every ten customers looks
up the shipments of the orders placed and dispatches, then delivers them (the admin
routes), as the happy path of docs/capacity.md does. Headless, locust prints the running table every
few seconds (progress) and, at the end, each request's p50/p99 and the errors, then the
summary below (the orders' final states: the suite kept up, or not).

A 409 where the contract allows one (cancelling a shipped order; dispatching an order its
customer just cancelled) is an answer, not an error: the mix races on purpose.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
import urllib.request
import uuid
from collections import Counter, deque
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.env import Environment

ROOT = Path(__file__).resolve().parents[2]
SKUS = [f"LOAD-{i:02d}" for i in range(20)]
ADDRESS = {
    "name": "Load Test",
    "line1": "1 Main St",
    "line2": None,
    "city": "London",
    "postalCode": "N1 9GU",
    "country": "GB",
}


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--orderflow-stack",
        default="",
        env_var="ORDERFLOW_STACK",
        help="a deployed stack's name (default: the local suite of --orderflow-state-dir)",
    )
    parser.add_argument(
        "--orderflow-state-dir",
        default=str(ROOT / ".orderflow"),
        help="the local suite's state folder (default: .orderflow/ of this repository)",
    )


class LocalIdentities:
    """Tokens as ``orderflow token`` mints them: the local suite's own signing key."""

    def __init__(self, state_dir: Path) -> None:
        state_file = state_dir / "local.json"
        if not state_file.exists():
            sys.exit(f"no running suite in {state_dir}: start it with ./dev run (orderflow local)")
        self.state_dir = state_dir
        self.api = json.loads(state_file.read_text())["api"]

    def token(self, sub: str, email: str | None, admin: bool) -> str:
        from orderflow import devauth

        return devauth.token(self.state_dir, sub=sub, email=email, admin=admin)

    def close(self) -> None:
        pass


class CognitoIdentities:
    """Test users in the stack's own user pool, created on demand and deleted at the end,
    as the end-to-end tests make them (``tests.support.stack.CognitoUsers``: ID tokens,
    since ``POST /orders`` needs the email claim; the admin joins the ``admin`` group).
    Not run here (no AWS)."""

    def __init__(self, stack: str) -> None:
        import botocore.session

        sys.path.insert(0, str(ROOT))  # tests.support: the users the end-to-end tests make
        from tests.support.stack import CognitoUsers

        session = botocore.session.get_session()
        cloudformation: Any = session.create_client("cloudformation")
        outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        found = {o["OutputKey"]: o["OutputValue"] for o in outputs.get("Outputs", [])}
        missing = {"ApiUrl", "UserPoolId", "UserPoolClientId"} - set(found)
        if missing:
            sys.exit(f"stack {stack} has no output {', '.join(sorted(missing))} (its own user pool?)")
        self.api = found["ApiUrl"].rstrip("/")
        self.users = CognitoUsers(session, found["UserPoolId"], found["UserPoolClientId"])
        self.run = uuid.uuid4().hex[:8]  # this run's users are its own

    def token(self, sub: str, email: str | None, admin: bool) -> str:
        return self.users.token(f"{sub}-{self.run}", email, admin)

    def close(self) -> None:
        self.users.remove_all()


IDENTITIES: LocalIdentities | CognitoIdentities | None = None
# Orders placed in this process that the warehouse has yet to see delivered (or cancelled).
# Bounded: when the warehouse falls behind, the oldest are forgotten rather than piling up.
SHIPMENTS: deque[str] = deque(maxlen=2000)
ORDERS: Counter[str] = Counter()  # what the run saw: orders placed, cancelled, dispatched, delivered
_numbers = itertools.count(1)


def identities() -> LocalIdentities | CognitoIdentities:
    assert IDENTITIES is not None, "set by the init listener"
    return IDENTITIES


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    global IDENTITIES
    options = environment.parsed_options
    if options is None:  # locust used as a library
        return
    if options.orderflow_stack:
        IDENTITIES = CognitoIdentities(options.orderflow_stack)
    else:
        IDENTITIES = LocalIdentities(Path(options.orderflow_state_dir))
    if not environment.host:
        environment.host = IDENTITIES.api


def _request(method: str, url: str, token: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - the suite's own API URL
        url,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        return resp.status, json.loads(resp.read())


@events.test_start.add_listener
def _seed(environment: Environment, **_: Any) -> None:
    """The catalog and plenty of stock, so orders are not rejected for want of it."""
    admin = identities().token("load-seed", None, admin=True)
    for i, sku in enumerate(SKUS):
        price = f"{5 + i}.50"
        product = {"name": sku, "unitPrice": price, "currency": "USD"}
        _request("PUT", f"{environment.host}/products/{sku}", admin, product)
        _request("PUT", f"{environment.host}/inventory/{sku}", admin, {"onHand": 10_000_000})


@events.quitting.add_listener
def _summary(environment: Environment, **_: Any) -> None:
    stats = environment.stats
    print("\nOrderflow load summary")
    print(f"{'request':34} {'count':>7} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for entry in sorted(stats.entries.values(), key=lambda e: (e.name, e.method)):
        print(
            f"{entry.method + ' ' + entry.name:34} {entry.num_requests:7d} {entry.num_failures:7d} "
            f"{entry.get_response_time_percentile(0.5):8.0f} {entry.get_response_time_percentile(0.99):8.0f}"
        )
    total = stats.total
    print(
        f"{'all':34} {total.num_requests:7d} {total.num_failures:7d} "
        f"{total.get_response_time_percentile(0.5):8.0f} {total.get_response_time_percentile(0.99):8.0f}"
    )
    print(f"requests/s {total.total_rps:.1f}, error ratio {total.fail_ratio:.2%}; orders: {dict(ORDERS)}")
    if IDENTITIES is not None:
        IDENTITIES.close()


class Customer(FastHttpUser):
    """A customer with a token of their own: orders, reads and sometimes cancels."""

    weight = 10
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        number = next(_numbers)
        sub = f"load-customer-{number}-{uuid.uuid4().hex[:6]}"
        token = identities().token(sub, f"{sub}@load.invalid", admin=False)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.orders: list[str] = []

    @task(5)
    def place_order(self) -> None:
        skus = random.sample(SKUS, random.randint(1, 3))
        items = [{"sku": sku, "quantity": random.randint(1, 3)} for sku in skus]
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            "/orders",
            json={"items": items, "shippingAddress": ADDRESS},
            headers=headers,
            name="/orders",
            catch_response=True,
        ) as resp:
            if resp.status_code == 201:
                self.orders.append(resp.json()["orderId"])
                SHIPMENTS.append(self.orders[-1])
                ORDERS["placed"] += 1
            else:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")

    @task(4)
    def read_order(self) -> None:
        if self.orders:
            order_id = random.choice(self.orders)
            self.client.get(f"/orders/{order_id}", headers=self.headers, name="/orders/{orderId}")

    @task(3)
    def list_orders(self) -> None:
        self.client.get("/orders?limit=20", headers=self.headers, name="/orders?limit=20")

    @task(1)
    def cancel_order(self) -> None:
        if not self.orders:
            return
        order_id = random.choice(self.orders)
        with self.client.post(
            f"/orders/{order_id}/cancel",
            json={"reason": "load test"},
            headers=self.headers,
            name="/orders/{orderId}/cancel",
            catch_response=True,
        ) as resp:
            if resp.status_code in (200, 202):
                ORDERS["cancel accepted"] += resp.status_code == 202
            elif resp.status_code == 409:  # already shipped, delivered or rejected: the contract's answer
                resp.success()
            else:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")


class Warehouse(FastHttpUser):
    """An admin moving shipments along: requested → dispatched → delivered.

    It learns of orders from the customers of this process (SHIPMENTS), as a warehouse
    learns of them from its pick lists, and asks the shipping API where each one stands.
    """

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        token = identities().token(f"load-warehouse-{uuid.uuid4().hex[:6]}", None, admin=True)
        self.headers = {"Authorization": f"Bearer {token}"}

    @task
    def move_shipments(self) -> None:
        for _ in range(min(5, len(SHIPMENTS))):
            order_id = SHIPMENTS.popleft()
            with self.client.get(
                f"/shipments/{order_id}",
                headers=self.headers,
                name="/shipments/{orderId}",
                catch_response=True,
            ) as resp:
                if resp.status_code == 404:  # not requested yet (or the order was rejected): look again later
                    resp.success()
                    SHIPMENTS.append(order_id)
                    continue
                if resp.status_code != 200:
                    resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                    continue
                status = resp.json()["status"]
            if status == "REQUESTED":
                tracking = f"LT{int(time.time() * 1000) % 10**9:09d}{random.randint(0, 99):02d}"
                if self._move(order_id, "dispatch", {"carrier": "LoadPost", "trackingNumber": tracking}):
                    SHIPMENTS.append(order_id)
            elif status == "DISPATCHED":
                self._move(order_id, "deliver", None)

    def _move(self, order_id: str, action: str, body: dict[str, str] | None) -> bool:
        with self.client.post(
            f"/shipments/{order_id}/{action}",
            json=body,
            headers=self.headers,
            name=f"/shipments/{{orderId}}/{action}",
            catch_response=True,
        ) as resp:
            if resp.status_code == 200:
                ORDERS[{"dispatch": "dispatched", "deliver": "delivered"}[action]] += 1
                return True
            if resp.status_code == 409:  # cancelled meanwhile: a race the contract allows
                resp.success()
            else:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
            return False
