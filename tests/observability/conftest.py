"""Fixtures of the metrics, logging and tracing tests (helpers: obsutil.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from obsutil import MakeClient

from service.app import create_app
from service.settings import Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def make_client(database_url: str) -> MakeClient:
    """The real app (SQLite and Postgres) with these Settings overrides, and a client for it. It logs JSON at INFO
    unless told otherwise (building it configures the process's logging)."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
        settings = {
            "database_url": database_url,
            "rules_dir": RULES_DIR,
            "api_keys": (),
            "log_level": "INFO",
            "log_format": "json",
        } | overrides
        async with AsyncTestClient(app=create_app(Settings(**settings)), base_url="http://127.0.0.1") as client:
            yield client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The real app in local mode (no API keys)."""
    async with make_client() as test_client:
        yield test_client
