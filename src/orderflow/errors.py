"""How the command line says what went wrong: one line a person can act on.

Its own module so that ``orderflow.cli`` and the ``orderflow.ops`` commands both use it
without importing each other.
"""

from __future__ import annotations


class CommandError(Exception):
    """A reason a command cannot go on, shown as one line."""


def one_line(exc: BaseException) -> str:
    """An exception as one line a person can act on: no quotes, no driver chatter."""
    import urllib.error

    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        return f"cannot connect: {getattr(reason, 'strerror', None) or reason}"
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError: the driver's own error
    if orig is not None:
        exc = orig
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], dict) and "M" in args[0]:  # pg8000: the server's message
        return str(args[0]["M"])
    text = str(exc).split("\n")[0].strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return text
