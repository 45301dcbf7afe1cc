"""Amazon SES v2 adapter of the ``EmailSender`` port."""

from __future__ import annotations

from typing import Any

from notifications.domain.confirmation import ConfirmationEmail
from notifications.domain.model import EmailNotSent


class SesEmailSender:
    """Sends through an injected ``sesv2`` client from the verified ``sender`` identity.

    One send per call: the composition root gives the client a single attempt
    (``total_max_attempts=1``) and 1 s connect / 3 s read timeouts, because SES takes
    no idempotency key and an SDK retry of a send that timed out can deliver the
    email twice within one invocation. Any failure, a timeout included, is raised.

    A timed-out send has an unknown outcome. The stated choice is at-least-once: the
    use case releases its claim and re-raises, so Lambda's retry sends again (a
    second receipt is better than none). tests/integration/test_ses_bounded.py
    proves at most one message per invocation attempt.
    """

    def __init__(self, client: Any, sender: str) -> None:
        self._client = client
        self._sender = sender

    def send(self, email: ConfirmationEmail) -> str:
        from botocore.exceptions import ClientError

        try:
            response = self._send(email)
        except ClientError as exc:
            # SES's message can name the address ("... failed the check: ada@example.com"):
            # only the code and HTTP status go on, the original is not chained.
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise EmailNotSent(f"{error.get('Code') or 'Unknown'} (HTTP {status})") from None
        return str(response["MessageId"])

    def _send(self, email: ConfirmationEmail) -> Any:
        return self._client.send_email(
            FromEmailAddress=self._sender,
            Destination={"ToAddresses": [email.to]},
            Content={
                "Simple": {
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": email.text, "Charset": "UTF-8"},
                        "Html": {"Data": email.html, "Charset": "UTF-8"},
                    },
                }
            },
        )
