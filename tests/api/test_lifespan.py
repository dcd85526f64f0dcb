"""What a worker checks and changes in its process while it serves, and undoes when it stops."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from profiles import WORKED_EXAMPLE
from sqlalchemy import text

from service.db.engine import create_single_use_engine
from service.db.migrate import current_revision, downgrade


async def test_the_collector_threshold_is_set_while_serving_and_restored_after(make_client: Any) -> None:
    before = gc.get_threshold()
    async with make_client(gc_gen0_threshold=12_345) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before


async def test_zero_leaves_the_collector_threshold_alone(make_client: Any) -> None:
    before = gc.get_threshold()
    async with make_client(gc_gen0_threshold=0):
        assert gc.get_threshold() == before


async def test_a_worker_refuses_to_start_on_a_database_missing_its_migrations(
    database_url: str, make_client: Any
) -> None:
    await downgrade(database_url, "0004")
    with pytest.RaisesGroup(  # the test client runs the lifespan in a task group
        pytest.RaisesExc(RuntimeError, match=r"lacks this release's migrations 0005, 0006: run `advisor db upgrade`")
    ):
        async with make_client():
            pass
    assert await current_revision(database_url) == "0004"  # it looked, and changed nothing


async def test_a_worker_starts_on_a_database_a_newer_release_migrated(database_url: str, make_client: Any) -> None:
    """A release must run on the next one's schema (deploy/README.md): an unknown, newer revision is no reason to
    refuse."""
    engine = create_single_use_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await engine.dispose()
    async with make_client() as client:
        assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201
