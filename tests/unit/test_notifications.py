"""The confirmation email and its exactly-once send, on in-memory fakes (no sockets)."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import pytest

from common.events import (
    EventMetadata,
    OrderCreated,
    OrderCreatedItem,
    ReservedItem,
    ShipmentDispatched,
    ShippingAddress,
)
from common.money import Money
from notifications.domain.confirmation import ConfirmationEmail, order_number, render_confirmation
from notifications.domain.model import ClaimOutcome, EmailInFlight, EmailKind
from notifications.usecases import (
    CONSUMER,
    send_dispatch_notice,
    send_order_confirmation,
    send_rejection_notice,
)
from tests.unit.fakes import FakeProcessed

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=1)


def order_created(name: str = "Ada Lovelace", **address: object) -> OrderCreated:
    return OrderCreated(
        order_id=uuid.UUID("1a2b3c4d-0000-4000-8000-000000000001"),
        customer_id="customer-1",
        customer_email="ada@example.com",
        items=[
            OrderCreatedItem(sku="SKU-1", quantity=2, unit_price=Money.parse("12.50", "USD")),
            OrderCreatedItem(sku="SKU-2", quantity=1, unit_price=Money.parse("3.99", "USD")),
        ],
        total=Money.parse("28.99", "USD"),
        currency="USD",
        shipping_address=ShippingAddress.model_validate(
            {
                "name": name,
                "line1": "1 Main St",
                "line2": None,
                "city": "London",
                "postalCode": "N1 9GU",
                "country": "GB",
                **address,
            }
        ),
        metadata=EventMetadata.new("corr-1"),
    )


# --- fakes -------------------------------------------------------------------------


@dataclass
class Claim:
    status: str
    token: uuid.UUID
    expires_at: datetime
    message_id: str | None = None


@dataclass
class Store:
    """The committed state, and the database's clock."""

    emails: dict[tuple[uuid.UUID, EmailKind], Claim] = field(default_factory=dict)
    recipients: dict[uuid.UUID, str] = field(default_factory=dict)
    pending: dict[tuple[uuid.UUID, EmailKind], tuple[uuid.UUID, str]] = field(default_factory=dict)
    processed: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    now: datetime = T0


class FakeEmailClaims:
    def __init__(self, store: Store) -> None:
        self._s = store

    def claim(
        self,
        order_id: uuid.UUID,
        event_id: uuid.UUID,
        token: uuid.UUID,
        ttl: timedelta,
        kind: EmailKind = EmailKind.CONFIRMATION,
    ) -> ClaimOutcome:
        key = (order_id, kind)
        existing = self._s.emails.get(key)
        fresh = Claim("CLAIMED", token, self._s.now + ttl)
        if existing is None:
            self._s.emails[key] = fresh
            return ClaimOutcome.CLAIMED
        if existing.status == "SENT":
            return ClaimOutcome.ALREADY_SENT
        if existing.token == token:
            return ClaimOutcome.CLAIMED
        if existing.expires_at >= self._s.now:
            return ClaimOutcome.IN_FLIGHT
        self._s.emails[key] = fresh
        return ClaimOutcome.RETAKEN

    def mark_sent(
        self, order_id: uuid.UUID, token: uuid.UUID, message_id: str, kind: EmailKind = EmailKind.CONFIRMATION
    ) -> bool:
        claim = self._s.emails.get((order_id, kind))
        if claim is None or claim.token != token:
            return False
        claim.status, claim.message_id = "SENT", message_id
        return True

    def release(
        self, order_id: uuid.UUID, token: uuid.UUID, kind: EmailKind = EmailKind.CONFIRMATION
    ) -> bool:
        claim = self._s.emails.get((order_id, kind))
        if claim is None or claim.token != token or claim.status != "CLAIMED":
            return False
        del self._s.emails[(order_id, kind)]
        return True


class FakeRecipients:
    def __init__(self, store: Store) -> None:
        self._s = store

    def record(self, order_id: uuid.UUID, email: str) -> None:
        self._s.recipients.setdefault(order_id, email)

    def get(self, order_id: uuid.UUID) -> str | None:
        return self._s.recipients.get(order_id)

    def lock(self, order_id: uuid.UUID) -> None:
        pass  # one thread: nothing to serialise


class FakePendingEmails:
    def __init__(self, store: Store) -> None:
        self._s = store

    def keep(self, order_id: uuid.UUID, kind: EmailKind, event_id: uuid.UUID, event: str) -> None:
        self._s.pending.setdefault((order_id, kind), (event_id, event))

    def of_order(self, order_id: uuid.UUID) -> list[tuple[EmailKind, uuid.UUID, str]]:
        return [(k, e, j) for (o, k), (e, j) in self._s.pending.items() if o == order_id]

    def drop(self, order_id: uuid.UUID, kind: EmailKind) -> None:
        self._s.pending.pop((order_id, kind), None)


class FakeUnitOfWork:
    """Works on a copy of the store; ``commit()`` makes the copy the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits = 0

    def __enter__(self) -> Self:
        self._working = copy.deepcopy(self.store)
        self.emails = FakeEmailClaims(self._working)
        self.recipients = FakeRecipients(self._working)
        self.pending = FakePendingEmails(self._working)
        self.processed = FakeProcessed(self._working.processed)
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def commit(self) -> None:
        self.store.emails = self._working.emails
        self.store.recipients = self._working.recipients
        self.store.pending = self._working.pending
        self.store.processed = self._working.processed
        self.commits += 1


class FakeSender:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[ConfirmationEmail] = []
        self.fail = fail  # the next N sends raise

    def send(self, email: ConfirmationEmail) -> str:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("SES unreachable")
        self.sent.append(email)
        return f"message-{len(self.sent)}"


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def uow(store: Store) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


# --- the email ---------------------------------------------------------------------


def test_the_order_number_is_the_first_eight_hex_digits_of_the_order_id():
    assert order_number(uuid.UUID("1a2b3c4d-0000-4000-8000-000000000001")) == "1a2b3c4d"


def test_the_email_names_the_order_and_lists_items_totals_and_address():
    email = render_confirmation(order_created())

    assert email.to == "ada@example.com"
    assert email.subject == "We received your Orderflow order 1a2b3c4d"
    for part in (email.text, email.html):
        assert "1a2b3c4d" in part
        assert "SKU-1" in part and "SKU-2" in part
        assert "12.50 USD" in part and "25.00 USD" in part  # unit price, line total
        assert "3.99 USD" in part
        assert "28.99 USD" in part  # total
        assert "Ada Lovelace" in part and "1 Main St" in part
        assert "London N1 9GU" in part and "GB" in part
    assert "SKU-1  2 x 12.50 USD = 25.00 USD" in email.text
    assert "<td>SKU-1</td><td>2</td><td>12.50 USD</td><td>25.00 USD</td>" in email.html


def test_every_customer_string_is_escaped_in_the_html():
    email = render_confirmation(
        order_created(name="<script>alert(1)</script>", line1="Flat 1 & 2", line2='"Quoted" <b>', city="A&B")
    )

    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "Flat 1 &amp; 2" in email.html
    assert "&quot;Quoted&quot; &lt;b&gt;" in email.html
    assert "A&amp;B N1 9GU" in email.html
    # The text part is text/plain: shown as typed.
    assert "Hello <script>alert(1)</script>," in email.text
    assert "Flat 1 & 2" in email.text


def test_an_address_without_a_second_line_has_no_blank_line():
    assert "  1 Main St\n  London N1 9GU" in render_confirmation(order_created()).text


# --- exactly once ------------------------------------------------------------------


def test_the_first_delivery_claims_sends_and_marks_sent(uow, store):
    event = order_created()
    sender = FakeSender()

    result = send_order_confirmation(event, uow, sender, claim_ttl=TTL)

    assert result.outcome is ClaimOutcome.CLAIMED and result.message_id == "message-1"
    assert len(sender.sent) == 1
    assert store.emails[(event.order_id, EmailKind.CONFIRMATION)].status == "SENT"
    assert store.emails[(event.order_id, EmailKind.CONFIRMATION)].message_id == "message-1"
    assert (CONSUMER, event.metadata.event_id) in store.processed


def test_a_redelivery_sends_nothing(uow, store):
    event = order_created()
    sender = FakeSender()
    send_order_confirmation(event, uow, sender, claim_ttl=TTL)

    again = send_order_confirmation(event, uow, sender, claim_ttl=TTL)

    assert again.outcome is ClaimOutcome.ALREADY_SENT and not again.sent
    assert len(sender.sent) == 1


def test_another_event_for_the_same_order_sends_nothing(uow):
    sender = FakeSender()
    send_order_confirmation(order_created(), uow, sender, claim_ttl=TTL)

    twin = order_created().model_copy(update={"metadata": EventMetadata.new("corr-2")})
    assert send_order_confirmation(twin, uow, sender, claim_ttl=TTL).outcome is ClaimOutcome.ALREADY_SENT
    assert len(sender.sent) == 1


def test_a_failed_send_releases_the_claim_and_raises_then_the_retry_sends(uow, store):
    event = order_created()
    sender = FakeSender(fail=1)

    with pytest.raises(ConnectionError):
        send_order_confirmation(event, uow, sender, claim_ttl=TTL)
    assert store.emails == {} and store.processed == set()

    retry = send_order_confirmation(event, uow, sender, claim_ttl=TTL)
    assert retry.outcome is ClaimOutcome.CLAIMED and len(sender.sent) == 1


def test_a_claim_held_by_a_live_invocation_makes_this_delivery_retry_later(uow, store):
    # Given another invocation claimed the email a moment ago and is sending it
    event = order_created()
    store.emails[(event.order_id, EmailKind.CONFIRMATION)] = Claim("CLAIMED", uuid.uuid4(), store.now + TTL)
    sender = FakeSender()

    # When the same event arrives again, it must not send, nor count as done
    with pytest.raises(EmailInFlight):
        send_order_confirmation(event, uow, sender, claim_ttl=TTL)
    assert sender.sent == []


def test_an_expired_claim_of_a_dead_invocation_is_retaken(uow, store):
    # Given an invocation claimed the email and died (timeout) before sending it
    event = order_created()
    dead = uuid.uuid4()
    store.emails[(event.order_id, EmailKind.CONFIRMATION)] = Claim("CLAIMED", dead, T0 + TTL)
    store.processed.add((CONSUMER, event.metadata.event_id))
    sender = FakeSender()

    # When Lambda retries the event after the claim expired
    store.now = T0 + TTL + timedelta(seconds=1)
    result = send_order_confirmation(event, uow, sender, claim_ttl=TTL)

    # Then this invocation sends the one email
    assert result.outcome is ClaimOutcome.RETAKEN and len(sender.sent) == 1
    assert store.emails[(event.order_id, EmailKind.CONFIRMATION)].status == "SENT"
    assert store.emails[(event.order_id, EmailKind.CONFIRMATION)].token != dead


def test_a_failure_does_not_release_a_claim_it_no_longer_holds(uow, store):
    # Given our claim was re-taken by another invocation while we were sending
    event = order_created()
    other = uuid.uuid4()

    class SlowFailingSender:
        def send(self, email: ConfirmationEmail) -> str:
            store.emails[(event.order_id, EmailKind.CONFIRMATION)] = Claim("CLAIMED", other, store.now + TTL)
            raise TimeoutError("SES timed out")

    with pytest.raises(TimeoutError):
        send_order_confirmation(event, uow, SlowFailingSender(), claim_ttl=TTL)

    # Then the other invocation's claim stays, and nothing marks the event handled yet
    assert store.emails[(event.order_id, EmailKind.CONFIRMATION)].token == other
    assert (CONSUMER, event.metadata.event_id) not in store.processed


def test_mark_sent_finding_its_claim_retaken_keeps_the_other_claim_and_says_so(uow, store, caplog):
    # Given SES accepted our email, but our claim was re-taken meanwhile (we outlived it)
    event = order_created()
    other = uuid.uuid4()

    class RetakenWhileSending(FakeSender):
        def send(self, email: ConfirmationEmail) -> str:
            store.emails[(event.order_id, EmailKind.CONFIRMATION)] = Claim("CLAIMED", other, store.now + TTL)
            return super().send(email)

    result = send_order_confirmation(event, uow, RetakenWhileSending(), claim_ttl=TTL)

    # Then the send is reported, the other invocation's claim is left as it is, and it is logged
    assert result.message_id == "message-1"
    claim = store.emails[(event.order_id, EmailKind.CONFIRMATION)]
    assert (claim.status, claim.token) == ("CLAIMED", other)
    assert any(r.levelname == "ERROR" and "re-taken" in r.getMessage() for r in caplog.records), (
        caplog.records
    )


def test_the_mark_runs_through_its_own_runner_when_given(uow):
    steps: list[tuple[str, str]] = []

    def runner(name: str) -> Any:
        def run(operation: Any) -> Any:
            steps.append((name, operation.__name__))
            return operation()

        return run

    send_order_confirmation(
        order_created(), uow, FakeSender(), claim_ttl=TTL, transaction=runner("step"), mark=runner("mark")
    )
    assert steps == [("step", "claim"), ("mark", "mark_sent"), ("step", "pending")]


def test_each_database_step_runs_through_the_given_transaction_runner(uow):
    steps: list[str] = []

    def runner(operation):
        steps.append(operation.__name__)
        return operation()

    send_order_confirmation(order_created(), uow, FakeSender(), claim_ttl=TTL, transaction=runner)
    assert steps == ["claim", "mark_sent", "pending"]


# --- the dispatch email ----------------------------------------------------------------


def shipment_dispatched(order_id: uuid.UUID, carrier: str = "DHL <Express>") -> ShipmentDispatched:
    return ShipmentDispatched(
        order_id=order_id,
        shipment_id=uuid.uuid4(),
        items=[ReservedItem(sku="SKU-1", quantity=1)],
        carrier=carrier,
        tracking_number="JD0146",
        dispatched_at=T0,
        metadata=EventMetadata.new("corr-1"),
    )


def test_the_dispatch_email_goes_once_to_the_orders_address_with_carrier_and_tracking(uow, store):
    created = order_created()
    sender = FakeSender()
    send_order_confirmation(created, uow, sender)
    event = shipment_dispatched(created.order_id)

    first = send_dispatch_notice(event, uow, sender)
    again = send_dispatch_notice(event, uow, sender)
    twin = send_dispatch_notice(shipment_dispatched(created.order_id), uow, sender)

    assert first.sent and not again.sent and not twin.sent
    [receipt, dispatch] = sender.sent
    assert dispatch.to == created.customer_email == receipt.to
    assert "JD0146" in dispatch.text and "DHL <Express>" in dispatch.text
    assert "DHL &lt;Express&gt;" in dispatch.html and "<Express>" not in dispatch.html
    assert store.emails[(created.order_id, EmailKind.DISPATCH)].status == "SENT"
    assert store.emails[(created.order_id, EmailKind.CONFIRMATION)].status == "SENT"


def test_a_dispatch_before_the_orders_address_is_known_is_kept_and_sent_with_the_confirmation(uow, store):
    # Given the dispatch arrives before the order's OrderCreated
    created = order_created()
    event = shipment_dispatched(created.order_id)
    sender = FakeSender()

    # Then it is kept, not failed: nothing sent, nothing claimed, the event handled
    kept = send_dispatch_notice(event, uow, sender)
    assert kept.outcome is ClaimOutcome.PENDING and not kept.sent
    assert store.emails == {} and sender.sent == []
    assert (CONSUMER, event.metadata.event_id) in store.processed
    # and a redelivery keeps it once
    assert send_dispatch_notice(event, uow, sender).outcome is ClaimOutcome.PENDING
    assert len(store.pending) == 1

    # When the OrderCreated arrives, the confirmation and then the dispatch email go out
    result = send_order_confirmation(created, uow, sender)
    assert result.sent and [p.kind for p in result.pending if p.sent] == [EmailKind.DISPATCH]
    assert [e.to for e in sender.sent] == [created.customer_email] * 2
    assert "JD0146" in sender.sent[1].text
    assert store.pending == {}

    # And nothing goes twice: the OrderCreated again, the dispatch again
    again = send_order_confirmation(created, uow, sender)
    assert not again.sent and again.pending == ()
    assert not send_dispatch_notice(event, uow, sender).sent
    assert len(sender.sent) == 2


def test_the_rejection_email_names_what_was_short_and_goes_once(uow, store):
    from common.events import InventoryReservationFailed, ShortItem

    created = order_created()
    sender = FakeSender()
    send_order_confirmation(created, uow, sender)
    failed = InventoryReservationFailed(
        order_id=created.order_id,
        customer_id="customer-1",
        reason="insufficient stock",
        short_items=[ShortItem(sku="SKU-2", requested=3, available=1)],
        metadata=EventMetadata.new("corr-1"),
    )
    assert send_rejection_notice(failed, uow, sender).sent
    assert not send_rejection_notice(failed, uow, sender).sent
    [_, rejection] = sender.sent
    assert rejection.to == created.customer_email
    assert "SKU-2: you ordered 3, 1 available" in rejection.text
    assert "SKU-2: you ordered 3, 1 available" in rejection.html
    assert created.order_id.hex[:8] in rejection.subject
    assert store.emails[(created.order_id, EmailKind.REJECTION)].status == "SENT"
