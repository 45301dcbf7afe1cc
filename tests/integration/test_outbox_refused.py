"""PutEvents refused as a whole (an IAM change propagating, a bus policy fixed a minute
later) is transient: the relay parks nothing, counts ``OutboxPublishRefused`` and ends
its run; once allowed, every event goes out exactly once with no operator step.

Real parts: the functions' own botocore client (timeouts, one attempt), a moto server,
and a loopback proxy in front of it answering ``AWSEvents.PutEvents`` with
``AccessDeniedException`` as AWS words it.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, update

from common import bootstrap
from common.outbox.tables import outbox
from common.outbox.writer import add_event
from common.settings import Settings
from tests.integration.test_outbox_failures import order_created_event, run_relay_function, scalar
from tests.support import network
from tests.support.aws import Bus

pytestmark = [pytest.mark.db, pytest.mark.aws]

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bus(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Bus:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = boto3.Session(region_name=REGION)
    name = f"refused-{uuid.uuid4().hex[:8]}"
    events = session.client("events", endpoint_url=moto_server)
    events.create_event_bus(Name=name)
    bus = Bus(events=events, sqs=session.client("sqs", endpoint_url=moto_server), name=name)
    bus.route(f"{name}-all", {"source": [{"prefix": ""}]})
    return bus


@pytest.fixture
def proxy(moto_server: str, bus: Bus, db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The functions' container, its EventBridge client pointed at the refusing proxy."""
    with network.refusing_target(moto_server, "AWSEvents.PutEvents", "AccessDeniedException") as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        settings = Settings(DATABASE_URL=db, EVENT_BUS_NAME=bus.name, AWS_REGION=REGION)
        bootstrap.override(settings=settings, events_client=bootstrap._client("events", settings))
        try:
            yield proxy
        finally:
            bootstrap.override()


def write_events(db: str, n: int, last_source: str | None = None) -> list[str]:
    """``n`` unpublished OrderCreated rows, as the API's transactions leave them (the last
    one from ``last_source`` if given); their orderIds."""
    engine = create_engine(db)
    ids = []
    try:
        with engine.begin() as conn:
            for i in range(n):
                event = order_created_event(i)
                outbox_id = add_event(conn, event)
                ids.append(str(event.order_id))
            if last_source:
                conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(source=last_source))
    finally:
        engine.dispose()
    return ids


def emf(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def delivered(bus: Bus) -> Counter[str]:
    return Counter(e["detail"]["orderId"] for e in bus.drain(f"{bus.name}-all"))


def test_a_whole_call_refused_for_several_runs_parks_nothing_and_everything_goes_out_once_after(
    proxy, bus, db, capsys
):
    # Given twelve events to publish, and a bus that refuses every PutEvents call as a whole
    order_ids = write_events(db, 12)
    # the oldest written ten minutes ago (what the age alarm watches)
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == select(func.min(outbox.c.id)).scalar_subquery())
            .values(created_at=func.now() - timedelta(minutes=10))
        )
    engine.dispose()
    capsys.readouterr()

    # When three relay runs meet the refusal
    for _ in range(3):
        assert run_relay_function() == {"published": 0, "failed": 12, "parked": 0}
        # Then each run ends with every row released (none claimed), none parked
        assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE claimed_until > now()") == 0
        assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE parked_at IS NOT NULL") == 0
    assert proxy.refused >= 3
    # And each run counted the refusal (the metric the template alarms on)
    runs = [m for m in emf(capsys) if "OutboxPublishRefused" in m]
    assert [m["OutboxPublishRefused"] for m in runs] == [[12.0]] * 3, runs
    # And the age the alarm watches is the oldest row's, growing, never reset by a run
    ages = [m["OutboxOldestUnpublishedAge"][0] for m in runs]
    assert 600 <= ages[0] <= ages[1] <= ages[2] < 660, ages
    assert delivered(bus) == Counter()

    # When the permission is fixed, the next run, with no operator step, publishes all
    proxy.refuse = False
    assert run_relay_function() == {"published": 12, "failed": 0, "parked": 0}

    # Then every event reached the bus exactly once, and nothing is left or parked
    assert delivered(bus) == Counter(dict.fromkeys(order_ids, 1))
    assert scalar(db, "SELECT count(*) FROM eventing.outbox WHERE published_at IS NULL") == 0
    [run] = [m for m in emf(capsys) if "OutboxPublishRefused" in m]
    assert run["OutboxPublishRefused"] == [0.0] and run["OutboxOldestUnpublishedAge"] == [0.0]
    assert run_relay_function() == {"published": 0, "failed": 0, "parked": 0}
    assert delivered(bus) == Counter()


def test_an_entry_refused_on_its_own_while_the_call_is_authorised_is_parked_and_the_rest_flow(proxy, bus, db):
    # Given five events, one from a source the bus policy does not allow
    order_ids = write_events(db, 5, last_source="forbidden.service")
    proxy.only_if_body_has = b"forbidden.service"

    # When the relay runs: the call of five is refused, each entry is then sent alone
    assert run_relay_function() == {"published": 4, "failed": 0, "parked": 1}

    # Then the four others went out once, and the forbidden one is parked with its reason
    assert delivered(bus) == Counter(dict.fromkeys(order_ids[:4], 1))
    assert scalar(db, "SELECT parked_reason FROM eventing.outbox WHERE parked_at IS NOT NULL").startswith(
        "AccessDeniedException"
    )
