"""The dispatch email: the order is on its way, with the carrier and tracking number.

Carrier and tracking number come from an admin; they are escaped in the HTML part.
"""

from __future__ import annotations

import html

from common.events import ShipmentDispatched
from notifications.domain.confirmation import ConfirmationEmail, order_number


def render_dispatch(event: ShipmentDispatched, to: str) -> ConfirmationEmail:
    number = order_number(event.order_id)
    text = "\n".join(
        [
            "Hello,",
            "",
            f"Your order {number} is on its way.",
            "",
            f"Carrier: {event.carrier}",
            f"Tracking number: {event.tracking_number}",
            "",
            f"Order reference: {event.order_id}",
            "",
        ]
    )
    e = html.escape
    body = (
        "<!DOCTYPE html>"
        '<html><head><meta charset="utf-8">'
        f"<title>Your Orderflow order {e(number)} is on its way</title></head><body>"
        f"<p>Your order <strong>{e(number)}</strong> is on its way.</p>"
        f"<p>Carrier: {e(event.carrier)}<br>Tracking number: {e(event.tracking_number)}</p>"
        f"<p>Order reference: {e(str(event.order_id))}</p>"
        "</body></html>"
    )
    return ConfirmationEmail(
        to=to, subject=f"Your Orderflow order {number} is on its way", text=text, html=body
    )
