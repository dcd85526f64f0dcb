"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dbutil import blank_database

from service.db.migrate import upgrade

# --- databases --------------------------------------------------------------------------------------------
# Every test using `database_url` runs on SQLite and on Postgres (ids "sqlite"/"postgres"; the Postgres case
# carries the `postgres` marker, so `-m "not postgres"` deselects it). See tests/dbutil.py for the Postgres
# server (ADVISOR_TEST_DATABASE_URL) and when its cases skip or fail.

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
async def blank_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of an empty, un-migrated database of each backend, removed after the test."""
    async with blank_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def database_url(blank_database_url: str) -> str:
    """URL of an empty database at the latest migration, for each backend."""
    await upgrade(blank_database_url)
    return blank_database_url


@pytest.fixture(params=[pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
async def pg_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of an empty Postgres database at the latest migration (for Postgres-only tests)."""
    async with blank_database(request.param, tmp_path) as url:
        await upgrade(url)
        yield url
