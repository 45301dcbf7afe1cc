"""Which failures are transient and which are permanent: the one place that says so.

docs/failures.md tells the same in prose. The rule: an error is *permanent* only
when the thing itself is wrong and no retry, fix elsewhere or wait can cure it (an
event that is malformed, or not one a consumer takes; an outbox entry EventBridge
refuses as too large or malformed). Everything else is *transient* and is retried
with backoff, never parked and never dead-lettered before the retry horizon:

* throttling, any 5xx, network errors, timeouts, a lost database connection;
* a whole call refused for authorisation or a missing resource (``AccessDenied``,
  ``ResourceNotFound``, ``NotAuthorized...``): an IAM change still propagating or a
  bus policy fixed a minute later cures it. The relay ends its run, releases its
  rows and counts ``OutboxPublishRefused`` (the template alarms on it); it parks an
  entry refused for such a reason only when another entry of the same run went
  through on its own, which shows the call as a whole is authorised.

Anything not recognised is transient: retrying something permanent costs some
calls and, for a consumer, ends in its DLQ after the horizon; parking something
transient would stop it for good.
"""

from __future__ import annotations

# A PutEvents *entry* refused for these is wrong in itself: it is parked (after the
# check that the call as a whole is authorised).
PERMANENT_ENTRY_ERRORS = frozenset(
    {
        "EntryTooLarge",  # ours: checked before sending
        "MalformedDetail",
        "InvalidArgument",
        "ValidationException",
        "SerializationException",
    }
)

# A whole call refused for these: the caller may not do it (yet), or the target is
# missing. A fix or a propagation cures it, so it is transient; but an entry refused
# for one of these, alone, while other entries went through, is refused for what it
# is (its source or detail type), and is parked.
REFUSED_CALL_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSNotFoundException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore error, else the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def is_permanent_entry_error(code: str) -> bool:
    """An outbox entry refused with ``code`` is wrong in itself (parked)."""
    return code in PERMANENT_ENTRY_ERRORS


def is_refused_call(code: str) -> bool:
    """A call refused with ``code`` is refused as a whole (authorisation, resource)."""
    return code in REFUSED_CALL_ERRORS


class PermanentFailure(Exception):
    """The thing handled is wrong in itself: retrying it can never succeed. A consumer
    sends such an event to its DLQ at once, with this message as the reason (so it
    names ids, never personal data)."""


def is_transient(exc: BaseException) -> bool:
    """Whether a consumer's failure deserves a retry with backoff (anything but a bad event)."""
    return not isinstance(exc, PermanentFailure)
