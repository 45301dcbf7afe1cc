"""The HTTP middleware chain, on Powertools Event Handler middlewares.

The seed article's chain (error handler, response formatter, JSON parser, auth)
maps onto Powertools' ``app.use([...])``; order, outermost first:

1. ``handle_errors``: every exception becomes the contract's JSON error: an
   ``ApiError`` as it says, a domain error through the handler the function
   registered for it with ``app.exception_handler`` (its one table of domain errors
   and their responses), anything else a 500 with the request id and no detail,
   logged in full. Every response (errors included) gets ``X-Correlation-Id``; CORS
   comes from Powertools.
2. ``authenticate``: a verified bearer token or 401; 503 when the issuer's key set
   cannot be fetched (our side's outage, worth a retry, not the caller's fault).
3. ``parse_json_body``: 413 over 64 KiB, 400 when the body is not JSON.

``require_admin`` is a per-route middleware (403).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, TypeAdapter, ValidationError

from common.auth import InvalidToken, KeySetUnavailable, Principal, TokenVerifier
from common.events import CamelModel
from common.observability import logger, metrics
from common.settings import Settings

if TYPE_CHECKING:
    from common.bootstrap import Container

MAX_BODY_BYTES = 64 * 1024
JSON = "application/json"
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

CORS_HEADERS = {
    "allow_headers": ["Authorization", "Content-Type", "Idempotency-Key", "X-Correlation-Id"],
    "expose_headers": ["Location", "X-Correlation-Id"],
    "max_age": 600,
}


class ConfiguredCors(CORSConfig):
    """Powertools' CORS with the origin of the settings (``CORS_ALLOW_ORIGIN``, the
    template's ``CorsAllowOrigin``), read per request rather than when the module is
    imported (tests and restored SnapStart copies see the container's settings)."""

    def __init__(self, origin: Callable[[], str]) -> None:
        super().__init__(**CORS_HEADERS)  # type: ignore[arg-type]
        self._origin = origin

    def _configured(self) -> CORSConfig:
        return CORSConfig(allow_origin=self._origin(), **CORS_HEADERS)  # type: ignore[arg-type]

    def allowed_origin(self, extracted_origin: str) -> str | None:
        return self._configured().allowed_origin(extracted_origin)

    def to_dict(self, origin: str | None) -> dict[str, str]:
        return self._configured().to_dict(origin)


class ErrorDetail(CamelModel):
    field: str
    message: str
    type: str


class ErrorBody(CamelModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(CamelModel):
    """The contract's error body, for the OpenAPI documents."""

    error: ErrorBody
    request_id: str


def documented(model: type[BaseModel], description: str) -> OpenAPIResponse:
    """An OpenAPI response with a JSON body of ``model``."""
    return {"description": description, "content": {"application/json": {"model": model}}}


def error_doc(description: str) -> OpenAPIResponse:
    return documented(ErrorResponse, description)


# Every route with a path parameter can answer it (see ``create_app``'s not-found handler):
# API Gateway routes any characters, the resolver matches fewer.
BAD_PATH_PARAMETER = "A path parameter with characters no route accepts (an emoji, a combining mark)"


class ApiError(Exception):
    """An error the client caused or may act on, with the contract's status and code."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def validation_error(exc: ValidationError, *, prefix: str = "") -> ApiError:
    """422 naming each invalid field by its path in the request body."""
    details = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        path = prefix
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        details.append({"field": path or "body", "message": err["msg"], "type": err["type"]})
    return ApiError(422, "VALIDATION_FAILED", "the request is invalid", details)


ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")


@overload
def parse(schema: type[ModelT], data: Any, *, field: str = "") -> ModelT: ...


@overload
def parse(schema: TypeAdapter[T], data: Any, *, field: str = "") -> T: ...


def parse(schema: Any, data: Any, *, field: str = "") -> Any:
    """``data`` validated by a pydantic model or adapter, or a 422 naming each bad field
    (under ``field``: a path parameter's name, say)."""
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(data)
        return schema.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, prefix=field) from None


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(payload, separators=(",", ":")),
        headers=headers or {},
    )


def correlation_id(app: BaseRouter) -> str:
    """The request's correlation id: the caller's ``X-Correlation-Id`` or a new one."""
    existing = app.context.get("correlation_id")
    if existing:
        return str(existing)
    given = app.current_event.headers.get("x-correlation-id")
    value = given if given and _CORRELATION_ID.match(given) else str(uuid.uuid4())
    app.append_context(correlation_id=value)
    logger.set_correlation_id(value)
    return value


def principal(app: BaseRouter) -> Principal:
    return app.context["principal"]  # type: ignore[no-any-return]


_NO_BODY = object()


def body(app: BaseRouter) -> Any:
    """The request's JSON body; 400 when the route reads one and the request has none
    (a route that takes no body, such as ``POST .../deliver``, never asks)."""
    value = app.context.get("body")
    if value is _NO_BODY:
        raise ApiError(400, "INVALID_JSON", "the body is not valid JSON")
    return value


def optional_body(app: BaseRouter, absent: Any = None) -> Any:
    """The request's JSON body, or ``absent`` when it has none (a route whose body is
    optional). A body of JSON ``null`` is a body, and the route's model judges it."""
    value = app.context.get("body")
    return absent if value is _NO_BODY else value


def error_response(app: BaseRouter, error: ApiError) -> Response:
    """The contract's error body for ``error`` (what an exception handler returns)."""
    request_id = getattr(app.lambda_context, "aws_request_id", None) or str(uuid.uuid4())
    payload: dict[str, Any] = {"error": {"code": error.code, "message": error.message}}
    if error.details:
        payload["error"]["details"] = error.details
    payload["requestId"] = request_id
    return json_response(error.status, payload)


def handle_errors(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    cid = correlation_id(app)
    origin = app.context.get("cors_origin", "*")
    try:
        response = next_middleware(app)
    except ApiError as error:
        if error.status >= 500:
            logger.error("request failed", extra={"code": error.code})
        response = error_response(app, error)
    except Exception as exc:
        # Powertools calls a registered handler only once every middleware (this one
        # included) has let the exception through; called here, its response gets the
        # same headers as every other.
        mapped = app.exception_handler_manager.lookup_exception_handler(type(exc))
        try:
            if mapped is None:
                raise
            response = mapped(exc)
        except Exception:
            # Full context goes to the log (by request id); the client learns nothing internal.
            logger.exception(
                "unhandled error",
                extra={
                    "method": app.current_event.request_context.http.method,
                    "path": app.current_event.raw_path,
                },
            )
            response = error_response(app, ApiError(500, "INTERNAL_ERROR", "an unexpected error occurred"))
    if response.status_code >= 500:
        # A handled error is no failed invocation: this count is what a new version's
        # rollout watches for 5xx (<Function>ServerErrorsAlarm in template.yaml).
        metrics.add_metric(name="ServerError", unit="Count", value=1)
    _format(response, cid, origin)
    return response


def _format(response: Response, cid: str, origin: str) -> None:
    response.headers["X-Correlation-Id"] = cid
    # Powertools adds the CORS headers when the request carries an Origin it allows;
    # every response names the allowed origin anyway (curl and servers included).
    response.headers.setdefault("Access-Control-Allow-Origin", origin)


def authenticate_with(get_verifier: Callable[[], TokenVerifier]) -> Callable[..., Response]:
    """Middleware: require a valid bearer token, expose its principal to the route."""

    def authenticate(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        header = app.current_event.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "UNAUTHORIZED", "a bearer token is required")
        try:
            who = get_verifier().verify(token.strip())
        except InvalidToken as exc:
            # The reason is safe to log (never the token itself) and useful to callers.
            logger.info("token rejected", extra={"reason": str(exc)})
            raise ApiError(401, "UNAUTHORIZED", "the bearer token is not valid") from None
        except KeySetUnavailable as exc:
            # Transient: the issuer (or the way to it) is down; the client may retry.
            logger.warning("token issuer's key set unavailable", extra={"reason": str(exc)})
            raise ApiError(
                503, "SERVICE_UNAVAILABLE", "tokens cannot be verified right now: try again later"
            ) from None
        app.append_context(principal=who)
        logger.append_keys(customer_id=who.subject)
        return next_middleware(app)

    return authenticate


def parse_json_body(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    event = app.current_event
    if event.request_context.http.method in ("POST", "PUT", "PATCH"):
        # API Gateway leaves "body" out when a request has none: no body is no JSON
        # either, for a route that reads one.
        raw = event.body or ""
        if raw == "":
            app.append_context(body=_NO_BODY)
            return next_middleware(app)
        # Base64 inflates by 4/3: checking the raw size first avoids decoding a flood.
        if len(raw) > (MAX_BODY_BYTES * 4 // 3 + 4 if event.is_base64_encoded else MAX_BODY_BYTES * 4):
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes")
        try:
            text = event.decoded_body or ""
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "INVALID_JSON", "the body is not valid UTF-8 JSON") from None
        if len(text.encode()) > MAX_BODY_BYTES:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes")
        try:
            app.append_context(body=json.loads(text))
        except (ValueError, RecursionError):
            raise ApiError(400, "INVALID_JSON", "the body is not valid JSON") from None
    return next_middleware(app)


def require_admin(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    if not principal(app).is_admin:
        raise ApiError(403, "FORBIDDEN", "this route needs the admin scope or group")
    return next_middleware(app)


# A service's table of domain errors: each maps the exception (with the app, for the
# request's body when a detail names a field) to the contract's response.
ErrorTable = Mapping[type[Exception], Callable[[APIGatewayHttpResolver, Any], ApiError]]


def register_errors(app: APIGatewayHttpResolver, errors: ErrorTable) -> None:
    """Install a service's table of domain errors (``handle_errors`` calls each handler)."""
    for error_type, to_api_error in errors.items():

        def respond(exc: Exception, to_api_error: Any = to_api_error) -> Response:
            return error_response(app, to_api_error(app, exc))

        app.exception_handler(error_type)(respond)


def create_app(deps: Callable[[], Container]) -> APIGatewayHttpResolver:
    """An HTTP API (payload 2.0) resolver with the middleware chain installed, its token
    verifier and CORS origin from ``deps()`` (``common.bootstrap.container``).

    Refuses to start (at import, the function's init) when no admin scope or group is
    configured: every request would otherwise fail, or nobody be an admin, unnoticed.
    """
    # Read from the environment here, not through deps(): the container stays unbuilt
    # (and overridable) until the first request.
    Settings.from_env().admin_rule()

    def remember_origin(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        app.append_context(cors_origin=deps().settings.cors_allow_origin)
        return next_middleware(app)

    app = APIGatewayHttpResolver(cors=ConfiguredCors(lambda: deps().settings.cors_allow_origin))
    app.use([remember_origin, handle_errors, authenticate_with(lambda: deps().verifier), parse_json_body])

    @app.not_found
    def _not_found(_: Exception) -> Response:
        error = ApiError(404, "NOT_FOUND", "no such route")
        event = app.current_event
        if event.raw_event.get("routeKey", "$default") != "$default" and event.path_parameters:
            # API Gateway matched a route, so the resolver refused a path parameter's
            # characters (an emoji, a combining mark): the parameter is invalid, not the route.
            error = ApiError(
                422,
                "VALIDATION_FAILED",
                "the request is invalid",
                [
                    {
                        "field": name,
                        "message": "contains characters not allowed here",
                        "type": "string_pattern",
                    }
                    for name in event.path_parameters
                ],
            )
        response = error_response(app, error)
        _format(response, correlation_id(app), deps().settings.cors_allow_origin)
        return response

    return app
