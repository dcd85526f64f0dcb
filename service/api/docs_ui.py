"""The browsable API docs at ``/docs``: Swagger UI served by the service itself, never from a CDN.

Swagger UI (``swagger-ui-dist``, vendored under ``service/static/swagger-ui/``; see its ``VERSION`` file)
is served by :func:`docs_static_router` under ``/static/swagger-ui/``. :func:`docs_render_plugins` points
Litestar's Swagger page at those files. The page is the render plugin at path ``/``, which Litestar mounts
at the OpenAPI config path itself, so ``GET /docs`` is Swagger UI; as no plugin claims ``/openapi.json``,
Litestar adds its JSON plugin there, so the raw spec is ``GET /docs/openapi.json``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

__all__ = ["docs_render_plugins", "docs_static_router"]

STATIC_URL_PATH = "/static"
# Resolved from this file, not the working directory, so an installed wheel finds its own copy.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SWAGGER_UI_DIR = STATIC_DIR / "swagger-ui"
_SWAGGER_UI_URL = f"{STATIC_URL_PATH}/swagger-ui"

# One year; the asset URLs carry the vendored version (``?v=``), so an upgrade is a new URL, never stale.
_STATIC_CACHE = CacheControlHeader(public=True, max_age=31_536_000, immutable=True)


@lru_cache(maxsize=1)
def _swagger_ui_version() -> str:
    """The vendored Swagger UI version: the first line of its ``VERSION`` file."""
    return (SWAGGER_UI_DIR / "VERSION").read_text(encoding="utf-8").splitlines()[0].strip()


def _asset(name: str) -> str:
    return f"{_SWAGGER_UI_URL}/{name}?v={_swagger_ui_version()}"


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at the OpenAPI root (``/docs``), loading only same-origin scripts, styles and favicon."""
    return [
        SwaggerRenderPlugin(
            path="/",
            js_url=_asset("swagger-ui-bundle.js"),
            css_url=_asset("swagger-ui.css"),
            standalone_preset_js_url=_asset("swagger-ui-standalone-preset.js"),
            # Litestar's default favicon is a CDN link; use the vendored one.
            favicon=f"<link rel='icon' type='image/png' href='{_asset('favicon-32x32.png')}'>",
        )
    ]


def docs_static_router() -> Router:
    """``GET /static/...``: the vendored front-end files, cacheable for a long time, not in the schema."""
    return create_static_files_router(
        path=STATIC_URL_PATH,
        directories=[STATIC_DIR],
        name="static",
        include_in_schema=False,
        cache_control=_STATIC_CACHE,
    )
