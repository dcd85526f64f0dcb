"""The browsable API docs at ``/docs``: Swagger UI served by the service itself, never from a CDN.

Swagger UI (``swagger-ui-dist``, vendored under ``service/static/swagger-ui/``; see its ``VERSION`` file)
is served by :func:`docs_static_router` under ``/static/swagger-ui/``. :func:`docs_render_plugins` points
Litestar's Swagger page at those files. The page is the render plugin at path ``/``, which Litestar mounts
at the OpenAPI config path itself, so ``GET /docs`` is Swagger UI; as no plugin claims ``/openapi.json``,
Litestar adds its JSON plugin there, so the raw spec is ``GET /docs/openapi.json``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

__all__ = [
    "DOCS_CSP",
    "docs_render_plugins",
    "docs_router",
    "docs_static_router",
    "page_security_headers",
    "static_asset_url",
]

# /docs is where people paste API keys ("Authorize"): it runs only this origin's scripts (no inline script), may not
# be framed, and sends no Referer. Swagger UI sets inline style attributes, hence 'unsafe-inline' for styles only;
# its icons are data: URIs.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def page_security_headers(csp: str) -> list[ResponseHeader]:
    """The headers of a page people use in a browser (``/docs``, the report pages): its CSP, never framed, no
    sniffing, no Referer."""
    return [
        ResponseHeader(name="Content-Security-Policy", value=csp),
        ResponseHeader(name="X-Frame-Options", value="DENY"),
        ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
        ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ]


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


@lru_cache(maxsize=16)
def static_asset_url(relative: str) -> str:
    """URL of one of the service's own files under ``static/`` (e.g. ``docs/docs.js``), versioned by its content:
    an edited file is a new URL, never a stale copy of the year-long cache."""
    digest = hashlib.sha256((STATIC_DIR / relative).read_bytes()).hexdigest()[:12]
    return f"{STATIC_URL_PATH}/{relative}?v={digest}"


class _SwaggerPage(SwaggerRenderPlugin):
    """Swagger UI started by a script file (``static/docs/docs.js``) that loads the OpenAPI document by URL, instead
    of Litestar's page, which inlines the document in a script: the page's CSP allows no inline script."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        scripts = (self.js_url, self.standalone_preset_js_url, static_asset_url("docs/docs.js"))
        return (
            "<!DOCTYPE html>\n<html lang='en'>\n<head>\n"
            f"<title>{escape(str(openapi_schema['info']['title']))}</title>\n{self.favicon}\n"
            "<meta charset='utf-8'>\n<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
            f"<link href='{self.css_url}' rel='stylesheet'>\n"
            f"<link href='{static_asset_url('docs/docs.css')}' rel='stylesheet'>\n"
            + "".join(f"<script src='{src}'></script>\n" for src in scripts)
            + f"</head>\n<body data-spec-url='{escape(self.get_openapi_json_route(request))}'>\n"
            "<div id='swagger-container'></div>\n</body>\n</html>\n"
        ).encode()


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at the OpenAPI root (``/docs``), loading only same-origin scripts, styles and favicon."""
    return [
        _SwaggerPage(
            path="/",
            js_url=_asset("swagger-ui-bundle.js"),
            css_url=_asset("swagger-ui.css"),
            standalone_preset_js_url=_asset("swagger-ui-standalone-preset.js"),
            # Litestar's default favicon is a CDN link; use the vendored one.
            favicon=f"<link rel='icon' type='image/png' href='{_asset('favicon-32x32.png')}'>",
        )
    ]


def docs_router(path: str) -> Router:
    """The router Litestar serves the docs page and the OpenAPI document from, with the page's security headers."""
    return Router(path, route_handlers=[], include_in_schema=False, response_headers=page_security_headers(DOCS_CSP))


def docs_static_router() -> Router:
    """``GET /static/...``: the vendored front-end files, cacheable for a long time, not in the schema."""
    return create_static_files_router(
        path=STATIC_URL_PATH,
        directories=[STATIC_DIR],
        name="static",
        include_in_schema=False,
        cache_control=_STATIC_CACHE,
    )
