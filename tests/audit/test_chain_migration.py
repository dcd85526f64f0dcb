"""The migration adding the hash chain: decisions stored before it are chained in (created_at, id) order."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from alembic.script import ScriptDirectory
from auditutil import T0, count_decisions, decision, seed
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import AuditRepository, DecisionRow, create_engine
from service.db.migrate import alembic_config, downgrade, upgrade
from service.services.audit import AuditWriter, verify_chain
from service.settings import Settings

CHAIN_REVISION = "0003"
BEFORE_CHAIN = ScriptDirectory.from_config(alembic_config()).get_revision(CHAIN_REVISION).down_revision
assert isinstance(BEFORE_CHAIN, str)


async def insert_unchained(engine: AsyncEngine, rows: list[DecisionRow]) -> None:
    """Insert decisions as the schema before the chain had them (no seq, prev_hash, row_hash, nor the later
    engine_version and client_request_id)."""
    columns = [name for name in DecisionRow.__slots__ if name not in ("engine_version", "client_request_id")]
    sql = f"INSERT INTO decisions ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    sqlite = engine.dialect.name == "sqlite"
    async with engine.begin() as conn:
        for row in rows:
            values = {c: getattr(row, c) for c in columns}
            if sqlite:  # what UTCDateTime and Uuid store on SQLite
                values["id"] = row.id.hex
                values["created_at"] = row.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")
            await conn.execute(text(sql), values)


async def decision_columns(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return {c["name"] for c in await conn.run_sync(lambda c: inspect(c).get_columns("decisions"))}


@pytest.fixture
async def old_engine(blank_database_url: str) -> AsyncEngine:
    await upgrade(blank_database_url, BEFORE_CHAIN)
    return create_engine(Settings(database_url=blank_database_url))


async def test_existing_decisions_are_chained_oldest_first(old_engine: AsyncEngine, blank_database_url: str) -> None:
    engine = old_engine
    try:
        await seed(engine)
        rows = [decision(i, created_at=T0 + timedelta(seconds=i // 3)) for i in range(12)]  # ties on created_at
        random.Random(3).shuffle(rows)
        await insert_unchained(engine, rows)
        await upgrade(blank_database_url)

        async with engine.connect() as conn:
            order = (await conn.execute(text("SELECT id FROM decisions ORDER BY seq"))).scalars().all()
        expected = sorted(rows, key=lambda r: (r.created_at, r.id))
        assert [str(i).replace("-", "") for i in order] == [r.id.hex for r in expected]
        report = await verify_chain(engine)
        assert report.ok, str(report)
        assert report.decisions == 12

        # Still append-only after the backfill lifted the guard for a moment.
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE decisions SET caller = 'mallory'"))
        # And the service appends after the backfilled rows.
        writer = AuditWriter(engine)
        await writer.write(decision(100))
        await writer.stop()
        report = await verify_chain(engine)
        assert report.ok and report.decisions == 13
    finally:
        await engine.dispose()


async def test_downgrade_keeps_the_decisions_and_upgrade_chains_them_again(
    old_engine: AsyncEngine, blank_database_url: str
) -> None:
    engine = old_engine
    try:
        await upgrade(blank_database_url)
        await seed(engine)
        writer = AuditWriter(engine)
        for i in range(5):
            await writer.write(decision(i))
        await writer.stop()
        head = (await verify_chain(engine)).head
        await engine.dispose()

        await downgrade(blank_database_url, BEFORE_CHAIN)
        assert not {"seq", "prev_hash", "row_hash"} & await decision_columns(engine)
        assert await count_decisions(engine) == 5
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM decisions"))
        await engine.dispose()

        await upgrade(blank_database_url)
        report = await verify_chain(engine)
        assert report.ok and report.head == head  # same rows, same order, same hashes
        async with engine.connect() as conn:
            assert await AuditRepository(conn).get_chain_head() == head
    finally:
        await engine.dispose()
