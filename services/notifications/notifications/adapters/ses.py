"""Amazon SES v2 adapter of the ``EmailSender`` port."""

from __future__ import annotations

from typing import Any

from notifications.domain.confirmation import ConfirmationEmail


class SesEmailSender:
    """Sends through an injected ``sesv2`` client from the verified ``sender`` identity.

    The client's own retry mode (standard, set in the composition root) retries
    throttling and transient errors; anything it gives up on is raised.
    """

    def __init__(self, client: Any, sender: str) -> None:
        self._client = client
        self._sender = sender

    def send(self, email: ConfirmationEmail) -> str:
        response = self._client.send_email(
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
        return str(response["MessageId"])
