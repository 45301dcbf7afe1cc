"""Generated documents: event JSON Schemas, the HTTP API's OpenAPI document and the
schema registry's template.

Both are generated from the code (pydantic models, Powertools routes), checked
in, and compared by tests so that they never drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from common.events import ALL_EVENTS, event_json_schema
from orderflow.paths import ROOT, SCHEMAS_DIR

OPENAPI = ROOT / "openapi" / "orderflow-api.json"
# The functions behind the one HTTP API, each with its routes and request bodies.
HTTP_FUNCTIONS = ("orders.handlers.api", "inventory.handlers.api", "shipping.handlers.api")
KEY_SET_UNAVAILABLE = {
    "description": "The token issuer's keys cannot be fetched (try again later)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def event_schemas() -> dict[Path, str]:
    return {SCHEMAS_DIR / f"{e.DETAIL_TYPE}.json": render(event_json_schema(e)) for e in ALL_EVENTS}


GATEWAY_NOTE = (
    " A method or path that no route takes is answered 404 by API Gateway before any function"
    " runs (locally too): no route answers 405. A request line or headers over the gateway's"
    " limits are answered 414 or 431."
)


def _path_parameter_schemas() -> dict[str, dict[str, Any]]:
    """What each path parameter accepts, as the routes check it: an order id is a UUID (any
    other names no order: 404); a SKU has the catalog's shape (else 404 to read, 422 to write)."""
    from pydantic import TypeAdapter

    from common.events import Sku

    return {"orderId": {"type": "string", "format": "uuid"}, "sku": TypeAdapter(Sku).json_schema()}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def _document_the_edges(operation: dict[str, Any]) -> None:
    """The answers every route can give besides its own (Powertools knows only the route's):
    API Gateway's, and the body middleware's."""
    schemas = _path_parameter_schemas()
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and parameter["name"] in schemas:
            parameter["schema"] = {"title": parameter["schema"].get("title"), **schemas[parameter["name"]]}
    responses = operation["responses"]
    if any(p["in"] == "path" for p in operation.get("parameters", [])):
        # A path parameter holding "/" (or nothing) makes a path no route takes.
        responses.setdefault("404", _error("Not found, or a path no route takes (API Gateway)"))
    # API Gateway's own answers; the local gateway gives them the contract's error body.
    responses.setdefault("414", _error("Request line over the gateway's limit"))
    responses.setdefault("431", _error("Headers over the gateway's limit"))
    if "requestBody" in operation:
        responses.setdefault("400", _error("Body is not JSON"))
        responses.setdefault("413", _error("Body over 64 KiB"))


def openapi_documents() -> dict[Path, str]:
    """One document for the HTTP API, merged from each HTTP function's routes."""
    import importlib

    document: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for module_name in HTTP_FUNCTIONS:
        api = importlib.import_module(module_name)
        schema = json.loads(
            api.app.get_openapi_json_schema(
                title="Orderflow HTTP API",
                version="1.0.0",
                description="Orders, the product catalog and stock levels. Every route needs a "
                "bearer JWT; changing the catalog, the stock and the shipments needs the admin scope.",
                security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
                security=[{"bearerAuth": []}],
            )
        )
        components.update(schema.get("components", {}).get("schemas", {}))
        # Powertools documents the request bodies only of validation-enabled routes;
        # each function declares its own instead (validation costs cold start).
        for (path, method), model in api.REQUEST_BODIES.items():
            body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
            schema["paths"][path][method]["requestBody"] = {
                "required": (path, method) not in getattr(api, "OPTIONAL_BODIES", ()),
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                },
            }
        for (path, method), parameters in getattr(api, "QUERY_PARAMETERS", {}).items():
            schema["paths"][path][method]["parameters"] = parameters
        # Every route authenticates (common.http's middleware, app-wide): each can answer 503
        # when the issuer's keys cannot be fetched.
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation["responses"].setdefault("503", KEY_SET_UNAVAILABLE)
        if not document:
            document = schema
        else:
            document["paths"].update(schema["paths"])
    for operations in document["paths"].values():
        for operation in operations.values():
            _document_the_edges(operation)
    document["info"]["description"] += GATEWAY_NOTE
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(components.items()))
    return {OPENAPI: render(document)}


REGISTRY = SCHEMAS_DIR / "registry.yaml"


def _draft4(node: Any) -> Any:
    """A pydantic (draft 2020-12) schema in JSON Schema draft 4, the registry's dialect."""
    if isinstance(node, list):
        return [_draft4(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id") or key.startswith("x-"):
            continue
        if key == "$defs":
            out["definitions"] = _draft4(value)
        elif key == "$ref" and isinstance(value, str):
            out["$ref"] = value.replace("#/$defs/", "#/definitions/")
        elif key == "const":  # draft 6
            out["enum"] = [value]
        else:
            out[key] = _draft4(value)
    return out


def registry_schema(detail_schema: dict[str, Any]) -> dict[str, Any]:
    """The whole event a rule delivers (EventBridge's envelope), ``detail_schema`` as its detail."""
    detail = _draft4(detail_schema)
    definitions = detail.pop("definitions", {})
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": detail_schema["x-detail-type"],
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "source": {"type": "string", "enum": [detail_schema["x-source"]]},
            "detail-type": {"type": "string", "enum": [detail_schema["x-detail-type"]]},
            "account": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": detail,
        },
        **({"definitions": definitions} if definitions else {}),
    }


def schema_registry() -> dict[Path, str]:
    """A nested CloudFormation template registering every event schema (template.yaml's
    ``EventSchemas``): CloudFormation cannot read the JSON files itself."""
    lines = [
        "# Generated by `orderflow schemas` from events/schemas/*.json: do not edit.",
        'AWSTemplateFormatVersion: "2010-09-09"',
        "Description: Orderflow event schemas (EventBridge schema registry)",
        "Parameters:",
        "  RegistryName:",
        "    Type: String",
        "Resources:",
        "  Registry:",
        "    Type: AWS::EventSchemas::Registry",
        "    Properties:",
        "      RegistryName: !Ref RegistryName",
        "      Description: JSON Schemas of the events on the Orderflow bus",
    ]
    for event in sorted(ALL_EVENTS, key=lambda e: e.DETAIL_TYPE):
        content = json.dumps(registry_schema(event_json_schema(event)), separators=(",", ":"))
        lines += [
            f"  {event.DETAIL_TYPE}Schema:",
            "    Type: AWS::EventSchemas::Schema",
            "    Properties:",
            "      RegistryName: !GetAtt Registry.RegistryName",
            f"      SchemaName: {event.SOURCE}@{event.DETAIL_TYPE}",
            "      Type: JSONSchemaDraft4",
            f"      Description: {event.SOURCE} {event.DETAIL_TYPE}, version 1.0",
            f"      Content: {json.dumps(content)}",
        ]
    lines += ["Outputs:", "  RegistryArn:", "    Value: !GetAtt Registry.RegistryArn"]
    return {REGISTRY: "\n".join(lines) + "\n"}


def generated() -> dict[Path, str]:
    return {**event_schemas(), **openapi_documents(), **schema_registry()}


def write(check: bool = False) -> list[Path]:
    """Write every generated document; with ``check``, only list those out of date."""
    stale = []
    for path, text in generated().items():
        if not path.exists() or path.read_text() != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return stale
