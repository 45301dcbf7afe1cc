"""Retention pruning: published outbox rows and processed-event marks past their retention
go, in small batches; no unpublished row (due, backing off, claimed or parked) ever does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from common.outbox.admin import prune
from tests.integration.test_outbox_failures import scalar

pytestmark = [pytest.mark.db]


def test_pruning_deletes_only_old_published_rows_and_old_marks_in_batches(db):
    engine = create_engine(db)
    with engine.begin() as conn:
        # 25 published 40 days ago, 5 published yesterday, and 40 unpublished rows that
        # are 90 days old in every state: due, backing off, claimed, parked.
        conn.execute(
            text(
                "INSERT INTO eventing.outbox (event_id, source, detail_type, detail, correlation_id,"
                " created_at, published_at, next_attempt_at, claimed_until, parked_at, parked_reason)"
                " SELECT gen_random_uuid(), 'orders.service', 'OrderCreated', '{}', 'c',"
                " now() - interval '90 days',"
                " CASE WHEN n <= 25 THEN now() - interval '40 days'"
                "      WHEN n <= 30 THEN now() - interval '1 day' END,"
                " CASE WHEN n % 4 = 1 THEN now() + interval '1 minute' ELSE now() - interval '90 days' END,"
                " CASE WHEN n % 4 = 2 THEN now() + interval '1 minute' END,"
                " CASE WHEN n % 4 = 3 AND n > 30 THEN now() - interval '80 days' END,"
                " CASE WHEN n % 4 = 3 AND n > 30 THEN 'EntryTooLarge: x' END"
                " FROM generate_series(1, 70) AS n"
            )
        )
        conn.execute(
            text(
                "INSERT INTO eventing.processed_events (consumer, event_id, processed_at)"
                " SELECT 'inventory', gen_random_uuid(),"
                " CASE WHEN n <= 12 THEN now() - interval '40 days' ELSE now() END"
                " FROM generate_series(1, 20) AS n"
            )
        )
    try:
        # When the relay prunes with a 32-day retention, five rows per batch
        deleted = prune(
            engine, outbox_retention=timedelta(days=32), processed_retention=timedelta(days=32), batch=5
        )
    finally:
        engine.dispose()

    # Then exactly the old published rows and old marks are gone
    assert deleted == (25, 12)
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 40
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NOT NULL") == 5
    assert scalar(db, "SELECT count(*) FROM eventing.processed_events") == 8


def test_pruning_stops_after_its_batch_budget(db):
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO eventing.outbox"
                " (event_id, source, detail_type, detail, correlation_id, published_at)"
                " SELECT gen_random_uuid(), 's', 'T', '{}', 'c', now() - interval '40 days'"
                " FROM generate_series(1, 30)"
            )
        )
    try:
        deleted = prune(
            engine,
            outbox_retention=timedelta(days=32),
            processed_retention=timedelta(days=32),
            batch=5,
            max_batches=2,
        )
    finally:
        engine.dispose()
    assert deleted == (10, 0)
    assert scalar(db, "SELECT count(*) FROM eventing.outbox") == 20
