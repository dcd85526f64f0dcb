"""Who may use the HTML pages: local mode lets everyone in; with API keys, a signed-in session holding a key's scopes.

Sign-in takes an API key once and keeps only its sha256 in Litestar's client-side session: a cookie encrypted and
authenticated with AES-GCM (so it cannot be read or forged without the secret), carrying its expiry inside the
authenticated data, ``HttpOnly`` and ``SameSite=Strict``. Each request looks the digest up among the configured keys
again, so a key removed from ``ADVISOR_API_KEYS`` ends its sessions. Forms carry Litestar's CSRF token. The JSON API
(``/v1``) never reads the session: it takes keys in headers only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from litestar import Request
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig

from service.api.auth import LOCAL, Keyring, Principal, hash_key, rate_limit_identity
from service.api.rate_limit import RateLimitMiddleware
from service.settings import AccessScope, Settings

__all__ = ["SESSION_MAX_AGE_S", "UiAccess"]

logger = logging.getLogger("service.api.ui_access")

SESSION_MAX_AGE_S = 8 * 3600  # a working day; then sign in again
_DIGEST = "key_sha256"


class _SessionMiddleware(SessionMiddleware[ClientSideSessionBackend]):
    """Litestar's session middleware, its backend (which holds the cipher) made when the app is built: a router's
    middleware definitions are copied while the app is assembled, and a cipher cannot be copied."""

    def __init__(self, app: Any, config: CookieBackendConfig) -> None:
        super().__init__(app, backend=ClientSideSessionBackend(config=config))


class UiAccess:
    """The session and CSRF middleware of the HTML pages, and the principal of a page request."""

    def __init__(self, settings: Settings) -> None:
        self.local_mode = not settings.api_keys
        self._keys = {
            k.sha256: Principal(caller=f"key:{k.name}", scopes=frozenset(k.scopes)) for k in settings.api_keys
        }
        self._keyring = Keyring(settings.api_keys)
        self._rate_limit = settings.rate_limit_per_minute
        secret = settings.session_secret.get_secret_value() if settings.session_secret else None
        if secret is None:
            # Without a configured secret, sessions last as long as this worker process (and only it knows them).
            secret = secrets.token_hex(32)
            if not self.local_mode:
                logger.warning("ADVISOR_SESSION_SECRET is not set: HTML sessions end when the worker does")
        key = hashlib.sha256(("session:" + secret).encode()).digest()
        # Local mode serves plain HTTP on loopback only, where a Secure cookie would never come back.
        secure = settings.session_cookie_secure and not self.local_mode
        self._session = CookieBackendConfig(
            secret=key,
            key="advisor_session",
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        self._csrf = CSRFConfig(
            secret=hashlib.sha256(("csrf:" + secret).encode()).hexdigest(),
            cookie_name="advisor_csrf",
            cookie_httponly=True,
            cookie_samesite="strict",
            cookie_secure=secure,
        )

    def middleware(self) -> list[DefineMiddleware | RateLimitMiddleware]:
        """Session first (the CSRF check may answer 403 before any handler runs; the rate limit reads the session).

        With keys, the pages are rate limited like the API (``ADVISOR_RATE_LIMIT_PER_MINUTE``), per signed-in key or
        else per client address, in a count of their own: the form decides and audits as ``POST /v1/recommendations``
        does.
        """
        chain: list[DefineMiddleware | RateLimitMiddleware] = [
            DefineMiddleware(_SessionMiddleware, config=self._session),
            DefineMiddleware(CSRFMiddleware, config=self._csrf),
        ]
        if not self.local_mode and self._rate_limit:
            chain.append(RateLimitMiddleware(self._rate_limit, "/", self._rate_identity))
        return chain

    def _rate_identity(self, scope: Any) -> str:
        session = scope.get("session")
        principal = self._by_digest(session.get(_DIGEST) if isinstance(session, dict) else None)
        return principal.caller if principal is not None else rate_limit_identity(scope)

    def _by_digest(self, digest: object) -> Principal | None:
        if not isinstance(digest, str):
            return None
        for stored, principal in self._keys.items():
            if hmac.compare_digest(stored, digest):
                return principal
        return None

    def principal(self, request: Request[Any, Any, Any]) -> Principal | None:
        """The caller of a page: local mode's principal, or the signed-in key's; None when not signed in."""
        if request.scope.get("auth") == LOCAL:
            user = request.scope.get("user")
            return user if isinstance(user, Principal) else None
        return self._by_digest(request.session.get(_DIGEST) if request.session else None)

    def sign_in(self, request: Request[Any, Any, Any], key: str) -> Principal | None:
        """Start a session for ``key`` if it is a configured key; the key itself is not kept."""
        principal = self._keyring.lookup(key.strip().encode())
        if principal is not None:
            request.set_session({_DIGEST: hash_key(key.strip())})
        return principal

    @staticmethod
    def sign_out(request: Request[Any, Any, Any]) -> None:
        request.clear_session()

    @staticmethod
    def allows(principal: Principal | None, scope: AccessScope) -> bool:
        return principal is not None and scope in principal.scopes
