"""A request rate limit per caller, counted in each worker process (``ADVISOR_RATE_LIMIT_PER_MINUTE``).

A caller's window of a minute opens with its first request; while it is open the caller may make ``limit`` requests,
and above that the answer is ``429`` with ``Retry-After``, the seconds until the window closes. Answers under the
limited prefix carry the ``RateLimit-Policy``, ``-Limit``, ``-Remaining`` and ``-Reset`` headers (IETF draft
"RateLimit header fields for HTTP"). Who the caller is comes from a function of the scope (``service.api.auth``: the
API key, or the client address for requests without a valid key), so this middleware runs after authentication.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Final

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from service.api.problems import Problem

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["WINDOW_S", "RateLimitMiddleware"]

WINDOW_S: Final = 60
_SWEEP_MIN: Final = 1024  # callers remembered before closed windows are swept away


@dataclass(slots=True)
class _Window:
    ends: float  # on the clock of RateLimitMiddleware (monotonic seconds)
    count: int = 0


class RateLimitMiddleware(ASGIMiddleware):
    """At most ``limit`` requests a minute per caller to paths under ``prefix``; one instance serves every route."""

    scopes = (ScopeType.HTTP,)

    def __init__(
        self, limit: int, prefix: str, identify: Callable[[Scope], str], *, clock: Callable[[], float] = monotonic
    ) -> None:
        self.limit = limit
        self.prefix = prefix
        self.identify = identify
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._sweep_at = _SWEEP_MIN
        self._policy = f"{limit}; w={WINDOW_S}".encode()

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not scope["path"].startswith(self.prefix):
            await next_app(scope, receive, send)
            return
        caller = self.identify(scope)
        now = self.clock()
        window = self._window(caller, now)
        reset = max(1, math.ceil(window.ends - now))
        if window.count >= self.limit:
            refused = {name.decode(): value.decode() for name, value in self._headers(0, reset)}
            raise Problem(
                429,
                "too-many-requests",
                "Too many requests",
                f"{caller} may make {self.limit} requests a minute; retry after {reset} s.",
                headers={**refused, "Retry-After": str(reset)},
            )
        window.count += 1
        headers = self._headers(self.limit - window.count, reset)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await next_app(scope, receive, send_with_headers)

    @property
    def callers(self) -> int:
        """How many callers' windows are remembered."""
        return len(self._windows)

    def _window(self, caller: str, now: float) -> _Window:
        window = self._windows.get(caller)
        if window is None or window.ends <= now:
            if len(self._windows) >= self._sweep_at:  # forget callers whose window closed: memory stays bounded
                self._windows = {c: w for c, w in self._windows.items() if w.ends > now}
                self._sweep_at = max(_SWEEP_MIN, 2 * len(self._windows))
            window = self._windows[caller] = _Window(now + WINDOW_S)
        return window

    def _headers(self, remaining: int, reset: int) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-policy", self._policy),
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]
