"""Placeholder until the offline Swagger UI lands (being written now)."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    return [SwaggerRenderPlugin(path="/")]


def docs_static_router() -> Any:
    return Router(path="/static", route_handlers=[])
