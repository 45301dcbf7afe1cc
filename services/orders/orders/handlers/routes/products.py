"""GET /products, GET /products/{sku} (any caller), PUT /products/{sku} (admin)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import TypeAdapter, ValidationError

from common import http
from common.events import Sku
from common.http import documented, error_doc, json_response
from orders.domain.commands import UpsertProduct
from orders.domain.model import ProductNotFound
from orders.handlers import paging
from orders.handlers.routes.common import COMMON_ERRORS
from orders.handlers.schemas import ProductOut, ProductPage, PutProductRequest
from orders.handlers.wiring import run, uow
from orders.usecases import get_product, list_products, upsert_product

_SKU: TypeAdapter[str] = TypeAdapter(Sku)

router = APIGatewayHttpRouter()


@router.get(
    "/products",
    summary="List the catalog, by SKU",
    responses={
        200: documented(ProductPage, "A page of products"),
        422: error_doc("Invalid limit or cursor"),
        **COMMON_ERRORS,
    },
)
def get_many():
    params = router.current_event.query_string_parameters or {}
    limit = paging.parse_limit(params.get("limit"))
    after = _decode_cursor(params.get("cursor"))
    products, next_after = run(lambda: list_products(limit, after, uow()))
    page = ProductPage(
        products=[ProductOut.of(p) for p in products],
        next_cursor=paging.encode_cursor([next_after]) if next_after else None,
    )
    return json_response(200, page.model_dump(mode="json", by_alias=True))


def _decode_cursor(raw: str | None) -> str | None:
    if not raw:
        return None
    parts = paging.decode_cursor(raw)
    if not (isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], str)):
        raise paging.invalid_cursor()
    return parts[0]


@router.get(
    "/products/<sku>",
    summary="Get one product",
    responses={
        200: documented(ProductOut, "The product"),
        404: error_doc("Unknown SKU"),
        422: error_doc(http.BAD_PATH_PARAMETER),
        **COMMON_ERRORS,
    },
)
def get_one(sku: str):
    try:
        _SKU.validate_python(sku)
    except ValidationError:
        raise ProductNotFound(sku) from None  # no product can have it
    product = run(lambda: get_product(sku, uow()))
    return json_response(200, ProductOut.of(product).model_dump(mode="json", by_alias=True))


@router.put(
    "/products/<sku>",
    summary="Create or update a product (admin)",
    middlewares=[http.require_admin],
    responses={
        200: documented(ProductOut, "The product"),
        400: error_doc("Body is not JSON"),
        403: error_doc("Admin scope required"),
        422: error_doc("Invalid body or SKU"),
        **COMMON_ERRORS,
    },
)
def put_product(sku: str):
    http.parse(_SKU, sku, field="sku")
    request = http.parse(PutProductRequest, http.body(router))
    command = UpsertProduct(sku=sku, name=request.name, unit_price=request.unit_price)
    product = run(lambda: upsert_product(command, uow()))
    return json_response(200, ProductOut.of(product).model_dump(mode="json", by_alias=True))


REQUEST_BODIES = {("/products/{sku}", "put"): PutProductRequest}
QUERY_PARAMETERS = {("/products", "get"): paging.QUERY_PARAMETERS}
