from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The real app on a migrated database (SQLite and Postgres), rules from rules/."""
    app = create_app(Settings(database_url=database_url, rules_dir=RULES_DIR))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as test_client:
        yield test_client
