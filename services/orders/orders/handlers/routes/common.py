"""What the orders API's route modules share."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from common.http import error_doc

COMMON_ERRORS: dict[int, OpenAPIResponse] = {
    401: error_doc("Missing or invalid token"),
    500: error_doc("Unexpected error"),
}
