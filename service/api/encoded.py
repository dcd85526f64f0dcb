"""``EncodedJSONResponse``: a JSON answer whose body is encoded already, sent as two ASGI messages.

The answer to POST /v1/recommendations is the exact bytes that were audited, so nothing is left to encode. Litestar's
own path from ``Response`` to ``ASGIResponse`` still checks the content's type, builds a header mapping, encodes it
and computes the length on every request: about a tenth of that route's CPU time in the profile (bench/README.md).
This response skips it. It applies no cookies, background tasks or ``after_request`` hooks, so it is only for
handlers that have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from litestar import Response
from litestar.response.base import ASGIResponse

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send

__all__ = ["EncodedJSONResponse"]

T = TypeVar("T")

_JSON = b"application/json"


class EncodedJSONResponse(Response[T]):
    """``body`` (JSON, already encoded) with ``status_code`` and ``headers``; ``T`` documents the body's schema."""

    __slots__ = ("_raw_headers",)

    def __init__(self, body: bytes, *, status_code: int, headers: Mapping[str, str]) -> None:
        # Response.__init__ normalises what this class never uses; the attributes are set for any reader all the same.
        self.content = body  # type: ignore[assignment]  # T names the schema of these bytes
        self.status_code = status_code
        self.media_type = "application/json"
        self.encoding = "utf-8"
        self.headers = dict(headers)
        self.cookies = []
        self.background = None
        self.response_type_encoders = {}
        self._raw_headers = [
            (b"content-type", _JSON),
            (b"content-length", str(len(body)).encode("latin-1")),
            *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()),
        ]

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        return _EncodedASGIResponse(self.content, self.status_code, self._raw_headers)  # type: ignore[arg-type]


class _EncodedASGIResponse(ASGIResponse):
    __slots__ = ("_raw_headers",)

    def __init__(self, body: bytes, status_code: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        # ASGIResponse.__init__ builds the header mapping this class replaces with raw_headers.
        self.body = body
        self.status_code = status_code
        self._raw_headers = raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self._raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
