"""Per-request identity: the request id (always the service's own), the client's X-Request-ID, and the caller."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any, overload

from litestar import Request
from litestar.types import Scope

from service.api.auth import Principal

__all__ = [
    "REQUEST_ID_HEADER",
    "assign_request_id",
    "caller_of",
    "client_request_id_of",
    "raw_header",
    "request_id_of",
    "require_json",
]

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


@overload
def raw_header(scope: Scope, name: bytes) -> bytes: ...
@overload
def raw_header(scope: Scope, name: bytes, default: None) -> bytes | None: ...
def raw_header(scope: Scope, name: bytes, default: bytes | None = b"") -> bytes | None:
    """The first value of header ``name`` (lower case, as ASGI servers pass names), or ``default`` if absent."""
    for key, value in scope["headers"]:  # a plain loop: no generator per call on the hot path
        if key == name:
            return value
    return default


def assign_request_id(scope: Scope) -> bytes:
    """Make the request's id and keep the client's X-Request-ID beside it; store both in the scope's state (where
    ``request_id_of`` and ``client_request_id_of`` find them) and return the service's id as the response header's
    value.

    The id is always made here (128 random bits), never taken from the client: a client could otherwise give its
    request another one's id, in the logs and in the audit row (security review, finding 8). A well-formed client
    id (``[A-Za-z0-9._:-]{1,128}``) is kept as ``client_request_id`` for correlation with the client's own logs;
    any other value is dropped. Called by the outermost ASGI layer (``service.observability.plugin.RequestObserver``),
    which also echoes the service's id on every response: one layer, one wrapped ``send``, for ids, metrics and the
    access log.
    """
    given = raw_header(scope, REQUEST_ID_HEADER)
    state = scope.setdefault("state", {})
    request_id = os.urandom(16).hex()  # as random as uuid4
    state["request_id"] = request_id
    state["client_request_id"] = given.decode("latin-1") if _SAFE_ID.match(given) else None
    return request_id.encode("latin-1")


def request_id_of(request: Request[Any, Any, Any]) -> str:
    """The service's id of the request (made by ``assign_request_id``)."""
    return str(request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex)


def client_request_id_of(request: Request[Any, Any, Any]) -> str | None:
    """The well-formed X-Request-ID the client sent, or None."""
    value = request.scope.get("state", {}).get("client_request_id")
    return None if value is None else str(value)


def caller_of(request: Request[Any, Any, Any]) -> str:
    """Who asked, as audited: ``key:<name>`` for an API key, ``local@<client host>`` in local mode.

    Set by :class:`service.api.auth.AuthenticationMiddleware`; ``anonymous@<client host>`` only if it is not
    installed (operations needing a scope never get that far without a principal).
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

    media = request.content_type[0]  # lower case, without parameters such as charset
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the profile as JSON with Content-Type: application/json.",
        )
