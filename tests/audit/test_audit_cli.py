"""`advisor audit verify` on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid
from collections.abc import Iterator

import pytest
from auditutil import MakeWriter, decision, unprotect
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import append_decisions

from service.cli import main
from service.db import AuditRepository
from service.services.audit import verify_chain
from service.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def advisor(database_url: str, *args: str) -> Result:
    """Run the CLI in a thread (it runs its own event loop) against ``database_url``."""

    def invoke() -> Result:
        get_settings.cache_clear()
        return CliRunner().invoke(main, list(args), env={"ADVISOR_DATABASE_URL": database_url})

    return await asyncio.to_thread(invoke)


async def test_verify_ok(engine: AsyncEngine, database_url: str, make_writer: MakeWriter) -> None:
    writer = make_writer(max_wait_ms=1)
    await asyncio.gather(*(writer.write(decision(i)) for i in range(30)))
    async with engine.connect() as conn:
        head = await AuditRepository(conn).get_chain_head()
    assert head is not None
    result = await advisor(database_url, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: 30 decisions, chain head {head.row_hash}\n"

    anchored = await advisor(database_url, "audit", "verify", "--anchor", f"30:{head.row_hash}", "--batch-size", "7")
    assert anchored.exit_code == 0, anchored.output
    wrong = await advisor(database_url, "audit", "verify", "--anchor", f"30:{'0' * 64}")
    assert wrong.exit_code == 1
    assert "differs from the anchor" in wrong.stderr


async def test_verify_reports_the_first_broken_link(
    engine: AsyncEngine, database_url: str, make_writer: MakeWriter
) -> None:
    writer = make_writer(max_wait_ms=1)
    await asyncio.gather(*(writer.write(decision(i)) for i in range(10)))
    await unprotect(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE decisions SET caller = 'mallory' WHERE seq = 4"))
        await conn.execute(text("DELETE FROM decisions WHERE seq = 8"))
        decision_id = (await conn.execute(text("SELECT id FROM decisions WHERE seq = 4"))).scalar_one()
    result = await advisor(database_url, "audit", "verify")
    assert result.exit_code == 1
    assert result.stdout == ""
    shown = str(uuid.UUID(str(decision_id)))  # a UUID on Postgres, its hex text on SQLite
    assert f"seq 4 (decision {shown}): row hash mismatch — the row was changed" in result.stderr
    assert "after 3 good decision(s)" in result.stderr


async def test_verify_with_a_bad_anchor_is_a_usage_error(database_url: str) -> None:
    result = await advisor(database_url, "audit", "verify", "--anchor", "nonsense")
    assert result.exit_code == 2
    assert "SEQ:HASH" in result.output


async def test_verify_without_a_database_exits_2() -> None:
    result = await advisor("postgresql+asyncpg://postgres@127.0.0.1:9/none", "audit", "verify")
    assert result.exit_code == 2
    assert "error: cannot verify the audit chain" in result.stderr


def test_audit_group_is_registered() -> None:
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert result.exit_code == 0
    assert "verify" in result.output


async def test_verify_streams_instead_of_loading_the_table(engine: AsyncEngine) -> None:
    """10 000 decisions of ~4 KB (about 40 MB of text) are walked within a few MB of memory."""
    filler = "x" * 4000
    async with engine.begin() as conn:
        for start in range(0, 10_000, 1000):
            await append_decisions(
                conn, [decision(i, profile=f'{{"pad":"{filler}","i":{i}}}') for i in range(start, start + 1000)]
            )
    tracemalloc.start()
    try:
        report = await verify_chain(engine, batch_size=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and report.decisions == 10_000
    assert peak < 12_000_000, peak  # loading the table would take 40 MB and more
