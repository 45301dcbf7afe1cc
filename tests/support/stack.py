"""A stack the end-to-end tests drive over HTTP: a deployed one, or the local suite seen the
same way (its outputs from a file, its users from the local issuer).

Everything a test needs comes from the stack's outputs: ``ApiUrl``, the user pool
(``UserPoolId``, ``UserPoolClientId``) and ``EventCaptureQueueUrl``, the queue that the
stack's ``EventCapture=true`` parameter makes (a rule sending every event of the bus to
it). Tests see events only through that queue, as they would in AWS.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orderflow.ops.target import Target
from tests.support.local_suite import ADDRESS, Response, http

OUTPUTS = ("ApiUrl", "EventCaptureQueueUrl")


class Users(Protocol):
    def token(self, sub: str, email: str | None = None, admin: bool = False) -> str: ...

    def remove_all(self) -> None: ...


class CognitoUsers:
    """Test users in the stack's own Cognito pool: created per test, removed at the end.

    ID tokens (``POST /orders`` needs the email claim); the admin joins the ``admin``
    group. This path needs AWS: here it is code only (nothing reaches AWS).
    """

    def __init__(self, session: Any, pool_id: str, client_id: str) -> None:
        self.cognito = session.create_client("cognito-idp")
        self.pool_id, self.client_id = pool_id, client_id
        self.created: list[str] = []
        self.lock = threading.Lock()

    def token(self, sub: str, email: str | None = None, admin: bool = False) -> str:
        # Cognito chooses the subject; the username (the email) is what the test names.
        username = email or f"{sub}@e2e.invalid"
        password = secrets.token_urlsafe(24) + "aA1!"
        self.cognito.admin_create_user(
            UserPoolId=self.pool_id,
            Username=username,
            UserAttributes=[
                {"Name": "email", "Value": username},
                {"Name": "email_verified", "Value": "true"},
            ],
            MessageAction="SUPPRESS",
        )
        with self.lock:
            self.created.append(username)
        self.cognito.admin_set_user_password(
            UserPoolId=self.pool_id, Username=username, Password=password, Permanent=True
        )
        if admin:
            self.cognito.admin_add_user_to_group(
                UserPoolId=self.pool_id, Username=username, GroupName="admin"
            )
        answer = self.cognito.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        return str(answer["AuthenticationResult"]["IdToken"])

    def remove_all(self) -> None:
        with self.lock:
            created, self.created = self.created, []
        for username in created:
            self.cognito.admin_delete_user(UserPoolId=self.pool_id, Username=username)


@dataclass
class Capture:
    """The events of the bus, read from the capture queue and kept by order."""

    sqs: Any
    queue_url: str
    by_order: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def drain(self) -> None:
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = answer.get("Messages", [])
            if not messages:
                return
            for message in messages:
                event = json.loads(message["Body"])
                order_id = event.get("detail", {}).get("orderId")
                if order_id:
                    self.by_order.setdefault(order_id, []).append(event)
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def events(self, order_id: str, *detail_types: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """The order's events once every one of ``detail_types`` has been seen."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.drain()
            seen = self.by_order.get(order_id, [])
            if set(detail_types) <= {e["detail-type"] for e in seen}:
                return list(seen)
            if time.monotonic() > deadline:
                got = sorted(e["detail-type"] for e in seen)
                raise AssertionError(f"order {order_id}: waited for {sorted(detail_types)}, saw {got}")


@dataclass
class Stack:
    api: str
    users: Users
    capture: Capture
    ops: Target | None = None  # what ``orderflow dlq`` and the other ops commands talk to

    @classmethod
    def from_outputs(
        cls, outputs: dict[str, str], users: Users, sqs: Any, ops: Target | None = None
    ) -> Stack:
        missing = [name for name in OUTPUTS if not outputs.get(name)]
        if missing:
            raise RuntimeError(
                f"the stack has no output {', '.join(missing)}: deploy it with EventCapture=true"
            )
        return cls(outputs["ApiUrl"].rstrip("/"), users, Capture(sqs, outputs["EventCaptureQueueUrl"]), ops)

    @classmethod
    def deployed(cls, name: str) -> Stack:
        """A stack in AWS, with the credentials and region of the environment."""
        import botocore.session

        session = botocore.session.get_session()
        found = session.create_client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
        users = CognitoUsers(session, outputs["UserPoolId"], outputs["UserPoolClientId"])
        ops = Target(endpoint=None, bus=outputs.get("EventBusName", ""), stack=name)
        return cls.from_outputs(outputs, users, session.create_client("sqs"), ops)

    @classmethod
    def from_file(cls, path: Path, users: Users, sqs: Any, ops: Target | None = None) -> Stack:
        """Outputs written to a file (``{"ApiUrl": ..., ...}``) in place of CloudFormation's."""
        return cls.from_outputs(json.loads(path.read_text()), users, sqs, ops)

    # ------------------------------------------------------------------ the shop
    def request(self, method: str, path: str, **kw: Any) -> Response:
        return http(method, self.api + path, **kw)

    def admin(self) -> str:
        return self.users.token(f"e2e-admin-{uuid.uuid4().hex[:8]}", admin=True)

    def customer(self) -> tuple[str, str]:
        sub = f"e2e-{uuid.uuid4().hex[:10]}"
        # SES's mailbox simulator: a stack still in the SES sandbox may send to it, and its
        # "success" address accepts every message (plus a label, so each user is its own).
        email = f"success+{sub}@simulator.amazonses.com"
        return self.users.token(sub, email), email

    def stock(self, admin: str, sku: str, on_hand: int, price: str = "12.50") -> None:
        for path, body in (
            (f"/products/{sku}", {"name": f"Product {sku}", "unitPrice": price, "currency": "USD"}),
            (f"/inventory/{sku}", {"onHand": on_hand}),
        ):
            answer = self.request("PUT", path, token=admin, body=body)
            assert answer.status == 200, (path, answer.status, answer.body)

    def place(self, token: str, items: list[dict[str, Any]], key: str | None = None) -> Response:
        headers = {"Idempotency-Key": key} if key else None
        body = {"items": items, "shippingAddress": ADDRESS}
        return self.request("POST", "/orders", token=token, headers=headers, body=body)

    def wait_status(self, token: str, order_id: str, *statuses: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            order = self.request("GET", f"/orders/{order_id}", token=token).body
            if isinstance(order, dict) and order.get("status") in statuses:
                return order
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id}: waited for {statuses}, it is {order}")
            time.sleep(0.25)
