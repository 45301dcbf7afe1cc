"""Notifications domain: the one confirmation email of an order, and its claim.

An email is *claimed* in the database before SES is called and marked *sent*
after, so that however often and however concurrently ``OrderCreated`` arrives,
one invocation sends and the others stand back.
"""

from __future__ import annotations

from enum import StrEnum


class EmailKind(StrEnum):
    """What an email is about: each kind is sent at most once per order."""

    CONFIRMATION = "CONFIRMATION"  # OrderCreated: the receipt
    DISPATCH = "DISPATCH"  # ShipmentDispatched: carrier and tracking number
    REJECTION = "REJECTION"  # InventoryReservationFailed: what was short
    CANCELLATION = "CANCELLATION"  # OrderCancelled: the order is cancelled


class EmailNotSent(Exception):
    """The email service refused or failed a send. Only its error code is kept: the
    service's own message can name the recipient's address, which must not be logged."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the email was not sent: {reason}")
        self.reason = reason


class EmailStatus(StrEnum):
    CLAIMED = "CLAIMED"  # an invocation is sending it (or died trying: see claim_expires_at)
    SENT = "SENT"


class ClaimOutcome(StrEnum):
    CLAIMED = "CLAIMED"  # first claim: this invocation sends
    RETAKEN = "RETAKEN"  # an expired claim of a dead invocation: this one sends instead
    IN_FLIGHT = "IN_FLIGHT"  # another live invocation holds the claim
    ALREADY_SENT = "ALREADY_SENT"
    # The order's OrderCreated (its recipient) not handled yet: the email is kept, and
    # sent once it is. An early event is a state to record, not a failure.
    PENDING = "PENDING"


class EmailInFlight(Exception):
    """Another invocation holds an unexpired claim on this order's email.

    Raised rather than treated as done: if that invocation dies before SES answers,
    only a later retry of this event can still send the email (once the claim
    expires). A retry that finds the email SENT then finishes quietly.
    """

    def __init__(self, order_id: object) -> None:
        super().__init__(f"an email of order {order_id} is being sent by another invocation")
        self.order_id = order_id
