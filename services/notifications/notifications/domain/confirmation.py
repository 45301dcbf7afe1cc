"""The order confirmation email: subject, plain text and HTML, from ``OrderCreated``.

Every customer-supplied string (name, address, SKU) is escaped in the HTML part;
the text part is ``text/plain`` and needs none.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass

from common.events import OrderCreated, ShippingAddress


@dataclass(frozen=True)
class ConfirmationEmail:
    to: str
    subject: str
    text: str
    html: str


def order_number(order_id: uuid.UUID) -> str:
    """The short number a customer quotes: the first 8 hex digits of the order id."""
    return order_id.hex[:8]


def _address_lines(address: ShippingAddress) -> list[str]:
    lines = [address.name, address.line1]
    if address.line2:
        lines.append(address.line2)
    lines += [f"{address.city} {address.postal_code}", address.country]
    return lines


def render_confirmation(event: OrderCreated) -> ConfirmationEmail:
    number = order_number(event.order_id)
    address = event.shipping_address
    rows = [
        (
            item.sku,
            item.quantity,
            item.unit_price.display(),
            (item.unit_price * item.quantity).display(),
        )
        for item in event.items
    ]
    total = event.total.display()

    text = "\n".join(
        [
            f"Hello {address.name},",
            "",
            f"Thank you for your order {number}. Here is what you ordered:",
            "",
            *(f"  {sku}  {qty} x {unit} = {line}" for sku, qty, unit, line in rows),
            "",
            f"Total: {total}",
            "",
            "We will ship it to:",
            *(f"  {line}" for line in _address_lines(address)),
            "",
            f"Order reference: {event.order_id}",
            "",
        ]
    )

    e = html.escape
    item_rows = "".join(
        f"<tr><td>{e(sku)}</td><td>{qty}</td><td>{e(unit)}</td><td>{e(line)}</td></tr>"
        for sku, qty, unit, line in rows
    )
    body = (
        "<!DOCTYPE html>"
        '<html><head><meta charset="utf-8">'
        f"<title>Your Orderflow order {e(number)}</title></head><body>"
        f"<p>Hello {e(address.name)},</p>"
        f"<p>Thank you for your order <strong>{e(number)}</strong>. Here is what you ordered:</p>"
        "<table>"
        "<thead><tr><th>Item</th><th>Quantity</th><th>Unit price</th><th>Line total</th></tr></thead>"
        f"<tbody>{item_rows}</tbody>"
        f'<tfoot><tr><th colspan="3">Total</th><td>{e(total)}</td></tr></tfoot>'
        "</table>"
        "<p>We will ship it to:<br>" + "<br>".join(e(line) for line in _address_lines(address)) + "</p>"
        f"<p>Order reference: {e(str(event.order_id))}</p>"
        "</body></html>"
    )
    return ConfirmationEmail(
        to=event.customer_email,
        # Sent on OrderCreated, before stock is reserved: a receipt, not a promise to ship.
        subject=f"We received your Orderflow order {number}",
        text=text,
        html=body,
    )
