"""The pages for people: ``GET /`` (draw a digit) and ``GET /docs`` (the API, offline).

Both come from Jinja2 templates (``templates/serve/``) extending the shared base
layout. ``/docs`` is rendered here from the app's own OpenAPI spec, with nothing
loaded from another host: FastAPI's Swagger UI and ReDoc pull their scripts from
a CDN and stay blank without internet. The page's script is ``/static/app.js``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mnistlab import __version__
from mnistlab.templating import render

__all__ = ["STATIC_DIR", "docs_html", "index_html", "router"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "web"  # app.js

router = APIRouter(include_in_schema=False)


def index_html() -> str:
    """The drawing page."""
    return render("serve/index.html", title="mnistlab: draw a digit")


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's operations, flattened for the template."""
    out = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = []
            for prm in op.get("parameters", []):
                schema = prm.get("schema", {})
                kind = schema.get("type", "")
                if "minimum" in schema or "maximum" in schema:
                    kind += f" {schema.get('minimum', '')}..{schema.get('maximum', '')}"
                default = json.dumps(schema.get("default"))
                params.append(
                    {
                        "name": prm["name"],
                        "type": kind,
                        "default": default,
                        "description": prm.get("description", ""),
                    }
                )
            bodies = [
                {"type": ctype, "schema": _schema_name(content.get("schema", {}))}
                for ctype, content in op.get("requestBody", {}).get("content", {}).items()
            ]
            answers = []
            for status, response in op.get("responses", {}).items():
                content = response.get("content", {})
                names = [_schema_name(c.get("schema", {})) or ctype for ctype, c in content.items()]
                answers.append({"status": status, "what": ", ".join(n for n in names if n)})
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "params": params,
                    "bodies": bodies,
                    "answers": answers,
                }
            )
    return out


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else ""


def _schemas(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each component schema with its fields (name, type, description)."""
    out = []
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        fields = []
        for field, prop in schema.get("properties", {}).items():
            kinds = [_schema_name(p) or p.get("type", "") for p in prop.get("anyOf", [prop])]
            fields.append(
                {
                    "name": field,
                    "type": " or ".join(k for k in kinds if k),
                    "description": prop.get("description", ""),
                }
            )
        out.append({"name": name, "description": schema.get("description", ""), "fields": fields})
    return out


def docs_html(spec: dict[str, Any]) -> str:
    """A self-contained HTML page of an OpenAPI spec: no scripts, nothing from the internet."""
    info = spec.get("info", {})
    return render(
        "serve/docs.html",
        title=f"{info.get('title', 'API')}: API docs",
        subtitle=info.get("summary", ""),
        info=info,
        openapi=spec.get("openapi", ""),
        operations=_operations(spec),
        schemas=_schemas(spec),
        version=__version__,
    )


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """The API docs, from ``/openapi.json``."""
    return HTMLResponse(docs_html(request.app.openapi()))


@router.get("/")
async def index(request: Request) -> HTMLResponse:
    """The drawing page."""
    return HTMLResponse(request.app.state.index_html)
