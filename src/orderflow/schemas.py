"""Generated documents: event JSON Schemas and the HTTP API's OpenAPI document.

Both are generated from the code (pydantic models, Powertools routes), checked
in, and compared by tests so that they never drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.events import ALL_EVENTS, event_json_schema
from orderflow.paths import ROOT, SCHEMAS_DIR

OPENAPI = ROOT / "openapi" / "orders-api.json"


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def event_schemas() -> dict[Path, str]:
    return {SCHEMAS_DIR / f"{e.DETAIL_TYPE}.json": render(event_json_schema(e)) for e in ALL_EVENTS}


def openapi_documents() -> dict[Path, str]:
    from orders.handlers import api

    schema = json.loads(
        api.app.get_openapi_json_schema(
            title="Orderflow orders API",
            version="1.0.0",
            description="Orders and the product catalog. Every route needs a bearer JWT.",
            security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            security=[{"bearerAuth": []}],
        )
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for (path, method), model in api.REQUEST_BODIES.items():
        body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        for name, definition in body.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components[model.__name__] = body
        schema["paths"][path][method]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    schema["components"]["schemas"] = dict(sorted(components.items()))
    return {OPENAPI: render(schema)}


def generated() -> dict[Path, str]:
    return {**event_schemas(), **openapi_documents()}


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
