"""Access control: API keys with scopes, the caller identity, and a request rate limit per caller.

How a request to the API (``/v1/...``) is handled, outermost first:

1. :class:`AuthenticationMiddleware` reads ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` and resolves it
   to a :class:`Principal` (``scope["user"]``), or records why it could not (``scope["auth"]``: ``missing`` or
   ``invalid``). It never answers by itself: the open routes (``/healthz``, ``/readyz``, ``/docs``, ``/static``)
   do not look at it.
2. :class:`RateLimitMiddleware` (only when keys are configured) counts requests to ``/v1/`` per caller (API key;
   requests without a valid key by client address) and answers ``429`` with ``Retry-After`` above
   ``ADVISOR_RATE_LIMIT_PER_MINUTE`` a minute.
3. :class:`ScopeMiddleware` enforces the scope each operation declares with ``opt=require_scope(...)``: ``401``
   without a valid key, ``403`` for a key that lacks the scope, before the body is read. (A middleware rather than
   a Litestar guard: Litestar copies the route handler object for every guard call, measured at 6 % of the CPU
   time of a recommendation request.)

Scopes: ``decide`` (POST /v1/recommendations), ``audit:read`` (GET /v1/decisions*, POST /v1/decisions/{id}/replay,
GET /v1/rulesets*: the rulesets are part of the audit record, as every decision names the ruleset that made it),
``admin`` (POST /v1/rulesets/reload, POST /v1/rulesets/impact). No scope implies another.

Local mode: with no keys configured, every request is the principal ``local@<client host>`` holding every scope,
nothing is rate limited, a warning is logged at start-up, and ``advisor serve`` refuses to bind anything but a
loopback address.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, get_args

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.openapi.spec import Reference, SecurityRequirement, SecurityScheme

from service.api.local_mode import check_local_request
from service.api.problems import Problem
from service.api.rate_limit import RateLimitMiddleware
from service.settings import AccessScope, ApiKey, Settings

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Middleware, Receive, Scope, Send

__all__ = [
    "ADMIN",
    "ALL_SCOPES",
    "API_PREFIX",
    "AUDIT_READ",
    "DECIDE",
    "MIN_KEY_LENGTH",
    "REQUIRED_SCOPE",
    "AuthenticationMiddleware",
    "Keyring",
    "Principal",
    "ScopeMiddleware",
    "access_control_middleware",
    "check_scope",
    "hash_key",
    "is_loopback",
    "log_access_mode",
    "new_key",
    "rate_limit_identity",
    "require_scope",
    "security_for",
    "security_schemes",
    "serve_refusal",
]

logger = logging.getLogger("service.api.auth")

DECIDE: Final[AccessScope] = "decide"
AUDIT_READ: Final[AccessScope] = "audit:read"
ADMIN: Final[AccessScope] = "admin"
ALL_SCOPES: Final[frozenset[AccessScope]] = frozenset(get_args(AccessScope))

API_PREFIX = "/v1/"
"""Only paths under this prefix are rate limited; health, docs and static files never are."""

BEARER_SCHEME = "bearer"
API_KEY_SCHEME = "apiKey"
API_KEY_HEADER = "X-API-Key"
_REALM = 'Bearer realm="advisor"'

# Auth outcomes recorded in scope["auth"].
LOCAL, KEY, MISSING, INVALID = "local", "key", "missing", "invalid"


# --- keys ------------------------------------------------------------------------------------------------------
# Keys are 256-bit random tokens made by `advisor keys new`, and only their sha256 is configured. An unsalted fast
# hash is the right tool for that: salts and slow KDFs protect low-entropy passwords against dictionary and
# rainbow-table attacks, which cannot work against a uniformly random 256-bit secret, while a fast digest keeps
# checking a key on every request cheap. (`advisor keys hash` refuses short, hand-made keys for the same reason.)

MIN_KEY_LENGTH = 32


def new_key() -> str:
    """A fresh random API key: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_key(key: str | bytes) -> str:
    """The lower-case hex sha256 of a key (its UTF-8 bytes): what ``ADVISOR_API_KEYS`` holds."""
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the identity written into each audit row, and what it may do."""

    caller: str
    scopes: frozenset[AccessScope]


class Keyring:
    """The configured keys, by sha256 digest. Empty: local mode."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys: list[tuple[bytes, Principal]] = [
            (bytes.fromhex(k.sha256), Principal(caller=f"key:{k.name}", scopes=frozenset(k.scopes))) for k in keys
        ]

    @property
    def local_mode(self) -> bool:
        return not self._keys

    def lookup(self, key: bytes) -> Principal | None:
        """The principal whose key this is. Compares with every stored digest in constant time, without early exit."""
        digest = hashlib.sha256(key).digest()
        found: Principal | None = None
        for stored, principal in self._keys:
            if hmac.compare_digest(digest, stored):
                found = principal
        return found


def _presented_keys(headers: Iterable[tuple[bytes, bytes]]) -> tuple[list[bytes], bool]:
    """The keys a request presents, and whether an Authorization header used a scheme other than Bearer."""
    keys: list[bytes] = []
    other_scheme = False
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                keys.append(token.strip())
            else:
                other_scheme = True
        elif name == b"x-api-key":
            keys.append(value.strip())
    return keys, other_scheme


@functools.lru_cache(maxsize=64)  # loopback clients only, so few hosts; a Principal is immutable
def _local_principal(host: str) -> Principal:
    return Principal(caller=f"local@{host}", scopes=ALL_SCOPES)


class AuthenticationMiddleware(ASGIMiddleware):
    """Resolves the request's credentials into ``scope["user"]`` (a Principal or None) and ``scope["auth"]``."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self.keyring.local_mode:
            check_local_request(scope)  # closed to web pages: no key stands in their way
            client = scope.get("client")
            scope["user"] = _local_principal(client[0] if client else "unknown")
            scope["auth"] = LOCAL
        else:
            keys, other_scheme = _presented_keys(scope["headers"])
            principal = None
            # Two different keys in one request are refused rather than guessed between.
            if len(set(keys)) == 1 and keys[0]:
                principal = self.keyring.lookup(keys[0])
            scope["user"] = principal
            scope["auth"] = KEY if principal else INVALID if keys or other_scheme else MISSING
        await next_app(scope, receive, send)


# --- scopes ----------------------------------------------------------------------------------------------------


REQUIRED_SCOPE: Final = "required_scope"
"""The key, in a route handler's ``opt``, of the scope its operation needs (set with ``opt=require_scope(...)``)."""


def require_scope(scope: AccessScope) -> dict[str, AccessScope]:
    """``opt`` for operations that need ``scope`` (enforced by :class:`ScopeMiddleware`); pair it with
    ``security=security_for(scope)`` (OpenAPI)."""
    if scope not in ALL_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return {REQUIRED_SCOPE: scope}


class ScopeMiddleware(ASGIMiddleware):
    """401 without a valid key, 403 for a key lacking the scope the route declares in ``opt`` (routes declaring
    none are open)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        required = scope["route_handler"].opt.get(REQUIRED_SCOPE)
        if required is not None:
            check_scope(scope, required)
        await next_app(scope, receive, send)


def check_scope(scope: Scope, required: AccessScope) -> None:
    """Raise the 401 or 403 problem unless the request's principal holds ``required``."""
    principal = scope.get("user")
    if not isinstance(principal, Principal):
        if scope.get("auth") == INVALID:
            raise Problem(
                401,
                "invalid-credentials",
                "Invalid API key",
                "the API key is not one this service knows (send exactly one key, as "
                f"`Authorization: Bearer <key>` or `{API_KEY_HEADER}: <key>`).",
                headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
        raise Problem(
            401,
            "unauthenticated",
            "Authentication required",
            f"send an API key as `Authorization: Bearer <key>` or `{API_KEY_HEADER}: <key>`.",
            headers={"WWW-Authenticate": _REALM},
        )
    if required not in principal.scopes:
        raise Problem(
            403,
            "insufficient-scope",
            "Insufficient scope",
            f"{principal.caller} does not have the scope '{required}' this operation needs.",
            headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", scope="{required}"'},
            required_scope=required,
        )


def security_schemes() -> dict[str, SecurityScheme | Reference]:
    """``components.securitySchemes``: the two ways to send a key (Swagger UI's Authorize button)."""
    return {
        BEARER_SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            description="An API key as `Authorization: Bearer <key>`.",
        ),
        API_KEY_SCHEME: SecurityScheme(
            type="apiKey",
            name=API_KEY_HEADER,
            security_scheme_in="header",
            description=f"An API key as `{API_KEY_HEADER}: <key>`.",
        ),
    }


def security_for(scope: AccessScope) -> list[SecurityRequirement]:
    """The operation's security requirement: either scheme, with the scope named as the role it needs."""
    return [{BEARER_SCHEME: [scope]}, {API_KEY_SCHEME: [scope]}]


# --- rate limit ------------------------------------------------------------------------------------------------


def rate_limit_identity(scope: Scope) -> str:
    """Whom the rate limit counts: the API key's caller, or the client address for requests without a valid key."""
    principal = scope.get("user")
    if isinstance(principal, Principal):
        return principal.caller
    client = scope.get("client")
    return f"unauthenticated@{client[0] if client else 'unknown'}"


def access_control_middleware(settings: Settings) -> list[Middleware]:
    """Authentication, the per-caller rate limit (which needs the caller), then the scope check, in that order.

    Local mode is not rate limited: it serves one machine's loopback, where a limit only gets in the way. It checks
    Host and the media type of POSTs instead (``service.api.local_mode``).
    """
    middleware: list[Middleware] = [AuthenticationMiddleware(Keyring(settings.api_keys))]
    if settings.api_keys and settings.rate_limit_per_minute:
        middleware.append(RateLimitMiddleware(settings.rate_limit_per_minute, API_PREFIX, rate_limit_identity))
    middleware.append(ScopeMiddleware())  # after the rate limit: refused requests count too
    return middleware


# --- local mode ------------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or ``localhost``."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def serve_refusal(settings: Settings, host: str) -> str | None:
    """Why the service must not bind ``host`` with these settings, or None."""
    if settings.api_keys or is_loopback(host):
        return None
    return (
        f"refusing to serve on {host}: no API keys are configured (local mode), so anyone who can reach it could "
        "use it. Bind a loopback address (--host 127.0.0.1), or configure ADVISOR_API_KEYS (`advisor keys new`)."
    )


def log_access_mode(settings: Settings) -> Callable[[], None]:
    """A start-up hook that logs how requests are authorised."""

    def log() -> None:
        if not settings.api_keys:
            logger.warning(
                "local mode: no API keys configured; serving on loopback only (every request is allowed, "
                "audited as local@<client address>)"
            )
            return
        logger.info(
            "access control: %d API key(s) (%s); rate limit %s",
            len(settings.api_keys),
            ", ".join(f"{k.name}: {' '.join(k.scopes)}" for k in settings.api_keys),
            f"{settings.rate_limit_per_minute}/minute per caller" if settings.rate_limit_per_minute else "off",
        )

    return log
