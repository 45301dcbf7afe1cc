"""End-to-end fixtures: the local suite, started as a user starts it, on free ports."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

from orderflow.local import BUS
from orderflow.ops.target import Target
from orderflow.template import load
from tests.support.local_suite import LocalSuite, running
from tests.support.postgres import fresh_database
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def suite(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSuite]:
    """``orderflow local`` on a database of its own on the session's PostgreSQL.

    Module-scoped and stopped (SIGTERM) at the end of the module, asserting a clean
    exit: its relay must not run on while other tests use the same server.
    """
    with fresh_database(database_url) as url:
        local = LocalSuite(tmp_path_factory.mktemp("local-suite"), database_url=url)
        with running(local):
            yield local
            code, alive = local.stop()
            assert code == 0, local.log
            assert not alive, f"left running after SIGTERM: {alive}"


@pytest.fixture
def customer(suite: LocalSuite) -> tuple[str, str]:
    """A new customer: (token, email)."""
    sub = f"e2e-{uuid.uuid4().hex[:10]}"
    email = f"{sub}@example.com"
    return suite.token(sub, email), email


@pytest.fixture
def sku() -> str:
    return f"E2E-{uuid.uuid4().hex[:8].upper()}"


# ---------------------------------------------------------------- a stack (tests/e2e/test_deployed.py)
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("orderflow").addoption(
        "--stack",
        default=os.environ.get("ORDERFLOW_E2E_STACK") or None,
        help="run the end-to-end flows against this deployed stack (deployed with EventCapture=true) "
        "instead of orderflow local; only the tests that take a stack run (env ORDERFLOW_E2E_STACK)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Against a deployed stack, the tests that drive a local suite of their own are not run.
    if not config.getoption("--stack", default=None):
        return
    keep = [item for item in items if "stack" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


class LocalUsers:
    """Users of the local issuer, as ``orderflow token`` mints them; nothing to remove."""

    def __init__(self, suite: LocalSuite) -> None:
        self.suite = suite

    def token(self, sub: str, email: str | None = None, admin: bool = False) -> str:
        return self.suite.token(sub, email, admin)

    def remove_all(self) -> None:
        pass


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack named by ``--stack``, else the local suite seen as one.

    Locally, what the stack's ``EventCapture=true`` creates (template.yaml's EventCaptureRule
    pattern, to a queue) is made on the suite's emulator, and the outputs the tests read
    are written to a file, so the deployed mode's code runs but for CloudFormation and Cognito.
    """
    name = request.config.getoption("--stack", default=None)
    if name:
        deployed = Stack.deployed(name)
        try:
            yield deployed
        finally:
            deployed.users.remove_all()
        return
    suite: LocalSuite = request.getfixturevalue("suite")
    sqs, events = suite.aws_client("sqs"), suite.aws_client("events")
    rule = load()["Resources"]["EventCaptureRule"]["Properties"]
    queue_url = sqs.create_queue(QueueName="orderflow-local-event-capture")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="orderflow-local-event-capture", EventBusName=BUS, EventPattern=json.dumps(rule["EventPattern"])
    )
    events.put_targets(
        Rule="orderflow-local-event-capture", EventBusName=BUS, Targets=[{"Id": "capture", "Arn": queue_arn}]
    )
    outputs = tmp_path_factory.mktemp("stack") / "outputs.json"
    outputs.write_text(json.dumps({"ApiUrl": suite.api, "EventCaptureQueueUrl": queue_url}))
    yield Stack.from_file(outputs, LocalUsers(suite), sqs, Target(endpoint=suite.aws, bus=BUS))
