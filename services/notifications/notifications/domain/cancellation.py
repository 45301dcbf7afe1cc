"""The cancellation email: the order is cancelled, with the reason when one was given.

The reason is the customer's (or an admin's) free text; it is escaped in the HTML part.
"""

from __future__ import annotations

import html

from common.events import OrderCancelled
from notifications.domain.confirmation import ConfirmationEmail, order_number


def render_cancellation(event: OrderCancelled, to: str) -> ConfirmationEmail:
    number = order_number(event.order_id)
    reason = event.cancellation_reason
    text = "\n".join(
        [
            "Hello,",
            "",
            f"Your order {number} is cancelled. Nothing will be shipped, and nothing is charged for it.",
            *(["", f"Reason given: {reason}"] if reason else []),
            "",
            f"Order reference: {event.order_id}",
            "",
        ]
    )
    e = html.escape
    body = (
        "<!DOCTYPE html>"
        '<html><head><meta charset="utf-8">'
        f"<title>Your Orderflow order {e(number)} is cancelled</title></head><body>"
        f"<p>Your order <strong>{e(number)}</strong> is cancelled. "
        "Nothing will be shipped, and nothing is charged for it.</p>"
        + (f"<p>Reason given: {e(reason)}</p>" if reason else "")
        + f"<p>Order reference: {e(str(event.order_id))}</p>"
        "</body></html>"
    )
    return ConfirmationEmail(
        to=to, subject=f"Your Orderflow order {number} is cancelled", text=text, html=body
    )
