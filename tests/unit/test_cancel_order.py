"""Asking for a cancellation, on in-memory fakes: no sockets, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from common.events import OrderCancellationRequested, OrderStatusChanged
from common.money import Money
from orders.domain.commands import CancelOrder
from orders.domain.model import Order, OrderLine, OrderNotCancellable, OrderNotFound, OrderStatus
from orders.usecases import cancel_order
from tests.unit.fakes import FakeUnitOfWork, Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def store_with(status: OrderStatus) -> tuple[Store, uuid.UUID]:
    order = Order(
        order_id=uuid.uuid4(),
        customer_id="customer-1",
        customer_email="ada@example.com",
        status=status,
        lines=[OrderLine("SKU-1", 1, Money.parse("1.00", "USD"))],
        currency="USD",
        shipping_address={},
        correlation_id="corr-1",
        created_at=T0,
        updated_at=T0,
    )
    return Store(orders={order.order_id: order}), order.order_id


@pytest.mark.parametrize("status", [OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.SHIPPING])
def test_the_owner_cancels_and_both_events_are_written_with_the_change(status):
    store, order_id = store_with(status)
    result = cancel_order(
        CancelOrder(order_id, "customer-1", "wrong size"), FakeUnitOfWork(store), lambda: T1
    )
    assert result.accepted and result.order.status is OrderStatus.CANCELLING
    assert (result.order.cancellation_reason, result.order.updated_at) == ("wrong size", T1)
    changed, requested = store.outbox
    assert isinstance(changed, OrderStatusChanged) and (changed.previous_status, changed.status) == (
        status.value,
        "CANCELLING",
    )
    assert isinstance(requested, OrderCancellationRequested) and requested.reason == "wrong size"
    assert requested.metadata.correlation_id == "corr-1"
    assert requested.metadata.causation_id == str(changed.metadata.event_id)


@pytest.mark.parametrize("status", [OrderStatus.CANCELLING, OrderStatus.CANCELLED])
def test_asking_again_changes_nothing(status):
    store, order_id = store_with(status)
    uow = FakeUnitOfWork(store)
    result = cancel_order(CancelOrder(order_id, None, "again"), uow)
    assert not result.accepted and result.order.status is status and result.outbox_ids == []
    assert store.outbox == [] and uow.commits == 0


@pytest.mark.parametrize("status", [OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.REJECTED])
def test_too_late_or_rejected_is_refused(status):
    store, order_id = store_with(status)
    with pytest.raises(OrderNotCancellable):
        cancel_order(CancelOrder(order_id, "customer-1"), FakeUnitOfWork(store))
    assert store.orders[order_id].status is status and store.outbox == []


def test_someone_elses_order_is_not_found_and_an_admin_may_cancel_it():
    store, order_id = store_with(OrderStatus.PENDING)
    with pytest.raises(OrderNotFound):
        cancel_order(CancelOrder(order_id, "customer-2"), FakeUnitOfWork(store))
    with pytest.raises(OrderNotFound):
        cancel_order(CancelOrder(uuid.uuid4(), None), FakeUnitOfWork(store))
    assert cancel_order(CancelOrder(order_id, None), FakeUnitOfWork(store)).accepted
