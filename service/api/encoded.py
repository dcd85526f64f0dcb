"""``EncodedJSONResponse``: a JSON answer whose body is encoded already, sent as two ASGI messages.

The answer to POST /v1/recommendations is the exact bytes that were audited, so nothing is left to encode. Litestar's
own path from ``Response`` to ``ASGIResponse`` still checks the content's type, builds a header mapping, encodes it
and computes the length on every request: about a tenth of that route's CPU time in the profile (bench/README.md).
This response skips it. Headers set on the route or its layers are sent (the response's own win, as in Litestar), and
so is whatever an ``after_request`` hook changed on the response; cookies and background tasks are refused at the
first request rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from litestar import Response
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.types import Receive, Scope, Send

__all__ = ["EncodedJSONResponse"]

T = TypeVar("T")

_JSON_HEADER = (b"content-type", b"application/json")
_SET_HERE = frozenset({"content-type", "content-length"})  # from the body, whatever a layer says


class EncodedJSONResponse(Response[T]):
    """``body`` (JSON, already encoded) with ``status_code`` and ``headers``; ``T`` documents the body's schema."""

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

    def to_asgi_response(
        self,
        *args: Any,
        headers: dict[str, str] | None = None,
        cookies: Iterable[Cookie] | None = None,
        background: BackgroundTask | BackgroundTasks | None = None,
        status_code: int | None = None,
        **kwargs: Any,
    ) -> ASGIResponse:
        if self.cookies or cookies or self.background or background:
            raise ImproperlyConfiguredException("EncodedJSONResponse sends no cookies and runs no background tasks")
        body: bytes = self.content  # type: ignore[assignment]
        merged = {**headers, **self.headers} if headers else self.headers
        raw = [_JSON_HEADER, (b"content-length", str(len(body)).encode("latin-1"))]
        for name, value in merged.items():
            lowered = name.lower()
            if lowered not in _SET_HERE:
                raw.append((lowered.encode("latin-1"), value.encode("latin-1")))
        return _EncodedASGIResponse(body, self.status_code or status_code or HTTP_200_OK, raw)


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
