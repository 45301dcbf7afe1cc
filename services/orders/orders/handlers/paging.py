"""Keyset pagination of the list routes: ``limit`` and an opaque ``cursor``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from common.http import ApiError

DEFAULT_PAGE = 20
MAX_PAGE = 100


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    # An empty ?limit= is not an integer: refused like any other, as the document says.
    # isdigit() alone admits "²", which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(
            422,
            "VALIDATION_FAILED",
            "limit is invalid",
            [{"field": "limit", "message": f"an integer from 1 to {MAX_PAGE}", "type": "int_range"}],
        )
    return int(raw)


def encode_cursor(parts: list[str]) -> str:
    raw = json.dumps(parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str) -> Any:
    """The JSON a cursor holds, or ``invalid_cursor()`` when it is not one of ours."""
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, RecursionError, binascii.Error):
        raise invalid_cursor() from None


def invalid_cursor() -> ApiError:
    return ApiError(
        422,
        "VALIDATION_FAILED",
        "cursor is invalid",
        [{"field": "cursor", "message": "use the nextCursor of a previous page", "type": "cursor"}],
    )


QUERY_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "the nextCursor of the previous page",
        "schema": {"type": "string"},
    },
]
