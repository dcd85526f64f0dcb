from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import create_engine
from service.settings import Settings


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The service's engine on a migrated database (each backend), disposed after the test."""
    engine = create_engine(Settings(database_url=database_url))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def pg_engine(pg_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=pg_database_url))
    try:
        yield engine
    finally:
        await engine.dispose()
