"""``orderflow outbox`` against a real database: status per service, requeue, one-line errors."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from orderflow.cli import main
from tests.integration.test_outbox_failures import scalar

pytestmark = [pytest.mark.db]


@pytest.fixture
def backlog(db):
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO eventing.outbox (id, event_id, source, detail_type, detail, correlation_id,"
                " created_at, published_at, parked_at, parked_reason) OVERRIDING SYSTEM VALUE VALUES"
                " (1, gen_random_uuid(), 'orders.service', 'OrderCreated', '{}', 'c',"
                "  now() - interval '10 minutes', NULL, NULL, NULL),"
                " (2, gen_random_uuid(), 'orders.service', 'OrderCreated', '{}', 'c',"
                "  now(), now(), NULL, NULL),"
                " (3, gen_random_uuid(), 'inventory.service', 'InventoryReserved', '{}', 'c',"
                "  now() - interval '3 hours', NULL, now(), 'EntryTooLarge: entry is 300000 bytes'),"
                " (4, gen_random_uuid(), 'inventory.service', 'InventoryReserved', '{}', 'c',"
                "  now() - interval '1 hour', NULL, now(), 'AccessDeniedException: denied')"
            )
        )
    engine.dispose()
    return db


def test_status_shows_unpublished_and_parked_rows_per_service_with_the_oldest_age(
    backlog, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", backlog)
    assert main(["outbox"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["service", "unpublished", "parked", "oldest"]
    # the oldest of inventory's rows is 3 hours old (parked rows count: they wait too)
    assert lines[1].split() == ["inventory.service", "0", "2", "3.0h"]
    assert lines[2].split()[:3] == ["orders.service", "1", "0"] and lines[2].split()[3] == "10m"
    assert "EntryTooLarge: entry is 300000 bytes" in out

    assert main(["outbox", "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in data["parked"]] == [3, 4]


def test_requeue_gives_named_or_all_parked_rows_back_to_the_relay(backlog, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", backlog)
    assert main(["outbox", "requeue", "3"]) == 0
    assert "requeued 1 row(s): 3" in capsys.readouterr().out
    assert scalar(
        backlog, "SELECT parked_at IS NULL AND next_attempt_at <= now() FROM eventing.outbox WHERE id = 3"
    )

    # An id that is not parked is reported, not silently ignored
    assert main(["outbox", "requeue", "1", "4"]) == 1
    captured = capsys.readouterr()
    assert "requeued 1 row(s): 4" in captured.out
    assert captured.err.strip() == "orderflow outbox: not parked (or unknown): 1"

    assert main(["outbox", "requeue", "--all"]) == 0
    assert "requeued 0 row(s)" in capsys.readouterr().out
    assert scalar(backlog, "SELECT count(*) FROM eventing.outbox WHERE parked_at IS NOT NULL") == 0


def test_without_database_url_it_reads_the_local_suites_state_file(backlog, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["outbox", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "start the local suite" in err

    (tmp_path / "local.json").write_text(json.dumps({"api": "http://127.0.0.1:3000", "database": backlog}))
    assert main(["outbox", "--state-dir", str(tmp_path)]) == 0
    assert "orders.service" in capsys.readouterr().out


def test_an_unreachable_database_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql+pg8000://postgres@127.0.0.1:1/none")
    assert main(["outbox"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("orderflow outbox: ") and err.count("\n") == 1


def test_against_a_stack_it_reads_database_url_and_never_the_local_suite(
    backlog, monkeypatch, capsys, tmp_path
):
    # a local suite is running, but the operator named a stack: no silent fallback to it
    (tmp_path / "local.json").write_text(json.dumps({"api": "http://127.0.0.1:3000", "database": backlog}))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["outbox", "--stack", "orderflow-staging", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "set DATABASE_URL to stack orderflow-staging's database" in err

    monkeypatch.setenv("DATABASE_URL", backlog)  # the stack's database, through a tunnel
    assert main(["outbox", "status", "--stack", "orderflow-staging", "--json"]) == 0
    assert {row["source"] for row in json.loads(capsys.readouterr().out)["services"]} >= {"orders.service"}
