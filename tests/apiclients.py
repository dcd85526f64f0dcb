"""API keys and client settings shared by the API tests (tests/api/conftest.py builds the fixtures from them)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from litestar.testing import AsyncTestClient

from service.api.auth import hash_key, new_key

__all__ = ["KEYS", "KEY_ENTRIES", "KEY_SCOPES", "LOCAL_MODE_HEADERS", "MakeClient"]

# The keyed app's API keys: name -> scopes; the keys themselves are fresh for each test session.
KEY_SCOPES: dict[str, tuple[str, ...]] = {
    "decider": ("decide",),
    "auditor": ("audit:read",),
    "operator": ("admin",),
    "everything": ("decide", "audit:read", "admin"),
}
KEYS: dict[str, str] = {name: new_key() for name in KEY_SCOPES}
KEY_ENTRIES = [{"name": n, "sha256": hash_key(KEYS[n]), "scopes": list(s)} for n, s in KEY_SCOPES.items()]


# In local mode every POST, a bodiless one too, must be declared JSON (service.api.local_mode): the clients send
# it on every request, as a well-behaved tool does. A test of another Content-Type sends its own.
LOCAL_MODE_HEADERS = {"content-type": "application/json"}

MakeClient = Callable[..., AbstractAsyncContextManager[AsyncTestClient]]  # type: ignore[type-arg]
