from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.api.auth import hash_key, new_key
from service.app import create_app
from service.settings import Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"

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


@pytest.fixture
def api_keys() -> dict[str, str]:
    """The keyed app's keys by name (scopes in KEY_SCOPES): decider, auditor, operator, everything."""
    return KEYS


@pytest.fixture
def key_scopes() -> dict[str, tuple[str, ...]]:
    return KEY_SCOPES


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The real app on a migrated database (SQLite and Postgres), rules from rules/."""
    app = create_app(Settings(database_url=database_url, rules_dir=RULES_DIR, api_keys=()))  # local mode
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as test_client:
        test_client.headers.update(LOCAL_MODE_HEADERS)
        yield test_client


MakeClient = Callable[..., AbstractAsyncContextManager[AsyncTestClient]]  # type: ignore[type-arg]


@pytest.fixture
def make_client(database_url: str) -> MakeClient:
    """Build the real app with these Settings overrides (e.g. ``api_keys=KEY_ENTRIES``) and a client for it."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
        app = create_app(Settings(database_url=database_url, rules_dir=RULES_DIR, **overrides))
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as test_client:
            test_client.headers.update(LOCAL_MODE_HEADERS)
            yield test_client

    return make


@pytest.fixture
async def keyed_client(make_client: MakeClient) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The real app with the API keys in KEY_ENTRIES (SQLite and Postgres); see the ``api_keys`` fixture."""
    async with make_client(api_keys=KEY_ENTRIES) as test_client:
        yield test_client
