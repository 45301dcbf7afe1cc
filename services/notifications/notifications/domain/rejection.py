"""The rejection email: the order could not be fulfilled, naming what was short.

SKUs come from the catalog an admin wrote; they are escaped in the HTML part.
"""

from __future__ import annotations

import html

from common.events import InventoryReservationFailed
from notifications.domain.confirmation import ConfirmationEmail, order_number


def render_rejection(event: InventoryReservationFailed, to: str) -> ConfirmationEmail:
    number = order_number(event.order_id)
    short = [f"{i.sku}: you ordered {i.requested}, {i.available} available" for i in event.short_items]
    text = "\n".join(
        [
            "Hello,",
            "",
            f"We are sorry: we could not fulfil your order {number}, because we lack stock for:",
            "",
            *(f"  {line}" for line in short),
            "",
            "Nothing was reserved and nothing will be shipped.",
            "",
            f"Order reference: {event.order_id}",
            "",
        ]
    )
    e = html.escape
    body = (
        "<!DOCTYPE html>"
        '<html><head><meta charset="utf-8">'
        f"<title>Your Orderflow order {e(number)} could not be fulfilled</title></head><body>"
        f"<p>We are sorry: we could not fulfil your order <strong>{e(number)}</strong>, "
        "because we lack stock for:</p>"
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in short) + "</ul>"
        "<p>Nothing was reserved and nothing will be shipped.</p>"
        f"<p>Order reference: {e(str(event.order_id))}</p>"
        "</body></html>"
    )
    return ConfirmationEmail(
        to=to, subject=f"Your Orderflow order {number} could not be fulfilled", text=text, html=body
    )
