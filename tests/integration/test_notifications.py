"""NotificationsFunction on real PostgreSQL and moto's SES v2: one email per order."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from common.consumer import InvalidEvent
from common.events import EventMetadata, OrderCreated, OrderCreatedItem, ShippingAddress
from common.money import Money
from notifications.adapters.repository import NotificationsUnitOfWork
from notifications.adapters.ses import SesEmailSender
from notifications.domain.model import ClaimOutcome, EmailInFlight
from notifications.handlers import send_email
from notifications.usecases import send_order_confirmation
from orderflow.lambda_runtime import LambdaContext
from tests.support.events import deliver as deliver_record
from tests.support.events import eventbridge_event

pytestmark = [pytest.mark.db, pytest.mark.aws]

SENDER = "orders@orderflow.test"  # the settings fixture's SENDER_EMAIL
REGION = "us-east-1"


def order_created(name: str = "Ada Lovelace") -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        customer_id="customer-1",
        customer_email="ada@example.com",
        items=[
            OrderCreatedItem(sku="SKU-1", quantity=2, unit_price=Money.parse("12.50", "USD")),
            OrderCreatedItem(sku="SKU-2", quantity=1, unit_price=Money.parse("3.99", "USD")),
        ],
        total=Money.parse("28.99", "USD"),
        currency="USD",
        shipping_address=ShippingAddress(
            name=name, line1="1 Main St", line2=None, city="London", postal_code="N1 9GU", country="GB"
        ),
        metadata=EventMetadata.new("corr-notify"),
    )


class Ses:
    """moto's SES v2 with the sender verified; records what the function asked it."""

    def __init__(self) -> None:
        import boto3

        self.client = boto3.client("sesv2", region_name=REGION)
        self.client.create_email_identity(EmailIdentity=SENDER)
        self.requests: list[dict[str, Any]] = []
        self.fail = 0  # the next N send_email calls raise

    def send_email(self, **request: Any) -> dict[str, Any]:
        if self.fail:
            self.fail -= 1
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url=f"https://email.{REGION}.amazonaws.com")
        self.requests.append(request)
        return self.client.send_email(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @staticmethod
    def sent() -> list[Any]:
        """What moto's SES accepted (its v2 API stores the HTML part as the body)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


@pytest.fixture
def ses(settings: Any, aws: Any) -> Any:
    from common import bootstrap

    ses = Ses()
    bootstrap.override(settings=settings, events_client=aws.events, ses_client=ses)
    yield ses
    bootstrap.override()


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    """What NotificationsFunction did with ``event``, delivered as a batch of one."""
    from common import bootstrap

    context = LambdaContext(function_name="NotificationsFunction")
    log = deliver_record(send_email.consumer, event, bootstrap.container(), context).log
    return {"orderId": log["order_id"], "outcome": log["outcome"], "messageId": log["message_id"]}


def rows(db: str, sql: str) -> list[Any]:
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def emails(db: str) -> list[Any]:
    return rows(db, "SELECT * FROM notifications.emails")


def processed(db: str) -> list[Any]:
    return rows(db, "SELECT * FROM eventing.processed_events WHERE consumer = 'notifications'")


def test_order_created_sends_one_confirmation_email(ses, db):
    # Given an order whose customer's name needs escaping in HTML
    event = order_created(name="<script>alert(1)</script> & Co")

    # When NotificationsFunction receives its OrderCreated
    result = deliver(eventbridge_event(event))

    # Then SES sent one email from the sender to the customer
    [message] = ses.sent()
    assert result == {"orderId": str(event.order_id), "outcome": "CLAIMED", "messageId": message.id}
    assert message.source == SENDER
    assert message.destinations == {"ToAddresses": ["ada@example.com"]}
    assert message.subject == f"We received your Orderflow order {event.order_id.hex[:8]}"
    # with the HTML escaped
    assert "<script>" not in message.body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in message.body
    assert "28.99 USD" in message.body
    # and a text part alongside it
    [request] = ses.requests
    body = request["Content"]["Simple"]["Body"]
    assert "SKU-1  2 x 12.50 USD = 25.00 USD" in body["Text"]["Data"]
    assert body["Html"]["Data"] == message.body

    # And the email is recorded as SENT with SES's message id, the event as processed
    [row] = emails(db)
    assert (row.order_id, row.status, row.message_id) == (event.order_id, "SENT", message.id)
    assert row.sent_at is not None and row.event_id == event.metadata.event_id
    assert [p.event_id for p in processed(db)] == [event.metadata.event_id]


def test_the_same_event_twice_sends_one_email(ses, db):
    event = eventbridge_event(order_created())

    deliver(event)
    again = deliver(event)

    assert again["outcome"] == "ALREADY_SENT" and again["messageId"] is None
    assert len(ses.sent()) == 1
    assert len(emails(db)) == 1


def test_ten_concurrent_deliveries_send_one_email(ses, db):
    # Given ten invocations, each with its own database connection, receiving one event
    event = order_created()
    barrier = threading.Barrier(10)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def invocation() -> None:
        engine = create_engine(db)
        try:
            barrier.wait()
            try:
                outcome: Any = send_order_confirmation(
                    event, NotificationsUnitOfWork(engine), SesEmailSender(ses, SENDER)
                ).outcome
            except EmailInFlight as exc:
                outcome = exc
            with lock:
                outcomes.append(outcome)
        finally:
            engine.dispose()

    # When they all run at once
    threads = [threading.Thread(target=invocation) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # Then exactly one sent; the others found it sent, or in flight (and will be retried)
    assert len(outcomes) == 10
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert all(
        o is ClaimOutcome.ALREADY_SENT or isinstance(o, EmailInFlight)
        for o in outcomes
        if o is not ClaimOutcome.CLAIMED
    )
    assert len(ses.sent()) == 1
    # And their retries, through the function, send nothing more
    assert deliver(eventbridge_event(event))["outcome"] == "ALREADY_SENT"
    assert len(ses.sent()) == 1
    assert [r.status for r in emails(db)] == ["SENT"]


def test_a_failed_send_leaves_no_claim_and_raises_then_the_retry_sends_one(ses, db):
    # Given SES is unreachable
    event = eventbridge_event(order_created())
    ses.fail = 99

    # When the event arrives, the failure propagates (Lambda retries, then the DLQ)
    from botocore.exceptions import EndpointConnectionError

    with pytest.raises(EndpointConnectionError):
        deliver(event)

    # And no claim, no processed mark and no email is left behind
    assert emails(db) == [] and processed(db) == [] and ses.sent() == []

    # When SES is back and Lambda retries the event
    ses.fail = 0
    result = deliver(event)

    # Then exactly one email went out
    assert result["outcome"] == "CLAIMED"
    assert len(ses.sent()) == 1
    assert [r.status for r in emails(db)] == ["SENT"]


class Crash(BaseException):
    """Stands in for Lambda killing the invocation (timeout, out of memory)."""


def test_a_claim_left_by_a_crashed_invocation_is_retaken_once_it_expires(ses, db):
    # Given an invocation that claimed the email and died while calling SES
    event = eventbridge_event(order_created())

    def crash(**_: Any) -> None:
        raise Crash()

    real_send, ses.send_email = ses.send_email, crash
    with pytest.raises(Crash):
        deliver(event)
    ses.send_email = real_send
    [claim] = emails(db)
    assert claim.status == "CLAIMED"
    # its claim lasts as long as the invocation could have run, plus a margin
    held = (claim.claim_expires_at - claim.claimed_at).total_seconds()
    assert 50 < held <= 60  # the local context's 30 s timeout + 30 s

    # When the event is redelivered while the claim may still be live
    with pytest.raises(EmailInFlight):
        deliver(event)
    # Then nothing is sent, and the claim stays
    assert ses.sent() == [] and [r.status for r in emails(db)] == ["CLAIMED"]

    # When Lambda's retry comes after the claim expired
    engine = create_engine(db)
    with engine.begin() as conn:  # time passes
        conn.execute(text("UPDATE notifications.emails SET claim_expires_at = now() - interval '1 second'"))
    engine.dispose()
    result = deliver(event)

    # Then the claim is re-taken and exactly one email goes out
    assert result["outcome"] == "RETAKEN"
    assert len(ses.sent()) == 1
    [row] = emails(db)
    assert row.status == "SENT" and row.claim_token != claim.claim_token
    assert deliver(event)["outcome"] == "ALREADY_SENT" and len(ses.sent()) == 1


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda e: e["detail"].pop("customerEmail"), id="detail-missing-a-field"),
        pytest.param(lambda e: e["detail"].update(total=28.99), id="money-as-a-float"),
        pytest.param(lambda e: e["detail"]["metadata"].update(eventId="not-a-uuid"), id="bad-event-id"),
        pytest.param(lambda e: e.update({"detail-type": "InventoryReserved"}), id="wrong-detail-type"),
        pytest.param(lambda e: e.update(source="somebody.else"), id="wrong-source"),
        pytest.param(lambda e: e.pop("detail"), id="no-detail"),
    ],
)
def test_a_malformed_event_is_refused_logged_and_writes_nothing(ses, db, caplog, mangle):
    event = eventbridge_event(order_created(), event_id="eb-" + uuid.uuid4().hex)
    mangle(event)

    with pytest.raises(InvalidEvent):
        deliver(event)

    # Logged as an error naming EventBridge's id of the event
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any(getattr(r, "event_id", None) == event["id"] for r in errors), errors
    assert emails(db) == [] and processed(db) == [] and ses.sent() == []


def test_an_event_that_is_not_even_an_object_is_refused(ses, db):
    with pytest.raises(InvalidEvent):
        deliver("not an event")  # type: ignore[arg-type]
    assert emails(db) == [] and ses.sent() == []
