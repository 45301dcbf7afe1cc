"""SES that accepts a send and never answers: at most one message per invocation attempt.

The functions' own sesv2 client (one attempt, 1 s connect, 3 s read) talks through a
proxy that forwards each request to moto's server and swallows the answer: SES did
send, the function cannot know it. The code's stated choice for that unknown outcome
is at-least-once (a receipt twice beats none): the claim is released and the error
raised, so Lambda's retry sends again, once.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from common import bootstrap
from tests.integration.test_notifications import REGION, SENDER, Ses, deliver, emails, order_created
from tests.support import network
from tests.support.events import eventbridge_event

pytestmark = [pytest.mark.db, pytest.mark.aws]


@pytest.fixture
def moto_server() -> Iterator[int]:
    from moto.server import ThreadedMotoServer

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield port
    server.stop()


def test_a_send_that_never_answers_is_sent_at_most_once_per_attempt(
    settings, db, aws, moto_server, monkeypatch
):
    import boto3

    direct = boto3.client("sesv2", region_name=REGION, endpoint_url=f"http://127.0.0.1:{moto_server}")
    direct.create_email_identity(EmailIdentity=SENDER)
    event = eventbridge_event(order_created())

    with network.swallowing_proxy(moto_server) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        bootstrap.override(settings=settings, ses_client=bootstrap._client("sesv2", settings))
        try:
            sent_after = []
            for _attempt in range(2):  # the first delivery, then Lambda's retry
                started = time.monotonic()
                with pytest.raises(Exception, match="Read timeout"):
                    deliver(event)
                elapsed = time.monotonic() - started
                # One attempt only: bounded by the client's timeouts, never retried by the SDK
                assert elapsed < bootstrap.call_bound_s("sesv2") + 1, elapsed
                sent_after.append(len(Ses.sent()))
        finally:
            bootstrap.override()

    # Then each attempt put exactly one message into SES, and no claim is left holding it
    assert sent_after == [1, 2]
    assert emails(db) == []


def test_the_sdk_is_configured_for_one_attempt_per_call(settings: Any) -> None:
    client = bootstrap._client("sesv2", settings)
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == bootstrap.CLIENT_TIMEOUTS[
        "sesv2"
    ]
