from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from apiclients import KEY_ENTRIES, KEY_SCOPES, KEYS, LOCAL_MODE_HEADERS, MakeClient
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


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
