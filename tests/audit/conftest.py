"""Fixtures of the audit writer, hash chain, idempotency and outage tests (helpers: auditutil.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from auditutil import MakeClient, MakeWriter, app_client, seed
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import create_engine
from service.services.audit import AuditWriter
from service.settings import Settings


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The service's engine on a migrated database (each backend) holding one ruleset; disposed after."""
    engine = create_engine(Settings(database_url=database_url))
    await seed(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def make_writer(engine: AsyncEngine) -> AsyncIterator[MakeWriter]:
    """Writers on ``engine`` (keyword arguments as AuditWriter's), started, and stopped after the test."""
    writers: list[AuditWriter] = []

    def make(**kwargs: Any) -> AuditWriter:
        writer = AuditWriter(engine, **kwargs)
        writers.append(writer)
        return writer

    try:
        yield make
    finally:
        for writer in writers:
            await writer.stop()


@pytest.fixture
def make_client(database_url: str) -> MakeClient:
    """The real app on the migrated database with these Settings overrides, and a client for it."""

    def make(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return app_client(database_url, **overrides)

    return make
