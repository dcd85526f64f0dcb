"""Per-request identity: request id (from X-Request-ID or generated) and caller."""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.api.auth import Principal

__all__ = ["RequestIdMiddleware", "caller_of", "request_id_of", "require_json"]

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware(ASGIMiddleware):
    """Takes a well-formed X-Request-ID or makes one, and echoes it on the response."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await next_app(scope, receive, send_with_id)


def request_id_of(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex)


def caller_of(request: Request[Any, Any, Any]) -> str:
    """Who asked, as audited: ``key:<name>`` for an API key, ``local@<client host>`` in local mode.

    Set by :class:`service.api.auth.AuthenticationMiddleware`; ``anonymous@<client host>`` only if it is not
    installed (guarded operations never get that far without a principal).
    """
    principal = request.scope.get("user")
    if isinstance(principal, Principal):
        return principal.caller
    client = request.client
    return f"anonymous@{client.host}" if client else "anonymous"


async def require_json(request: Request[Any, Any, Any]) -> None:
    """415 unless the body is declared as JSON (checked before the body is read).

    async: Litestar runs a sync before_request hook in a worker thread, a thread hop on every request.
    """
    from service.api.problems import Problem

    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the profile as JSON with Content-Type: application/json.",
        )
