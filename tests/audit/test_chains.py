"""Several writers, several chains: each writer appends to a chain of its own, checkpoints bind the chains, and
the verifier walks them all and catches what is planted in one of them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from auditutil import decision, hex_sql, seed, unprotect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import AuditRepository, DecisionRow, create_engine
from service.db.chain import ChainHead, genesis_hash
from service.db.connection import write_transaction
from service.services.audit import AuditWriter, ChainReport, verify_chain
from service.services.audit.checkpoints import Checkpoints, decode_heads
from service.settings import Settings


def assert_broken(report: ChainReport, chain: int, seq: int | None, *phrases: str) -> None:
    assert not report.ok, str(report)
    assert report.broken is not None
    assert (report.broken.chain, report.broken.seq) == (chain, seq), str(report.broken)
    for phrase in phrases:
        assert phrase in str(report.broken), str(report.broken)


async def append_on(engine: AsyncEngine, chain: int, rows: Sequence[DecisionRow]) -> None:
    """Append ``rows`` to ``chain`` as a writer holding it does (its head row created first)."""
    async with write_transaction(engine) as conn:
        repo = AuditRepository(conn)
        await repo.ensure_chain_head(chain)
        await repo.append_decisions(rows, await repo.lock_chain_head(chain))


async def record_checkpoint(engine: AsyncEngine, at: datetime) -> None:
    checkpoints = Checkpoints(engine, every_s=60, clock=lambda: at)
    assert await checkpoints.record(due_after_s=0) is not None


async def execute(engine: AsyncEngine, sql: str, **params: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


@pytest.fixture
async def three_chains(engine: AsyncEngine) -> AsyncEngine:
    """Chains 1, 2 and 3 with six decisions each, appended in turns, and a checkpoint of their heads; then the
    append-only triggers lifted, as the database owner could."""
    await seed(engine)
    for turn in range(3):
        for chain in (1, 2, 3):
            await append_on(engine, chain, [decision(100 * chain + 2 * turn + k) for k in range(2)])
    await record_checkpoint(engine, datetime.now(UTC))
    await unprotect(engine)
    return engine


async def test_the_verifier_walks_every_chain(three_chains: AsyncEngine) -> None:
    report = await verify_chain(three_chains)
    assert report.ok, str(report)
    assert report.decisions == 18 and report.checkpoints == 1
    assert sorted((h.chain, h.seq) for h in report.heads.values()) == [(1, 6), (2, 6), (3, 6)]
    async with three_chains.connect() as conn:
        assert await AuditRepository(conn).get_chain_heads() == report.heads
    assert str(report).startswith("ok: 18 decisions in 3 chains, heads 1:6:")


async def test_a_gap_planted_in_one_chain_is_reported(three_chains: AsyncEngine) -> None:
    await execute(three_chains, "DELETE FROM decisions WHERE chain = 2 AND seq = 3")
    assert_broken(await verify_chain(three_chains), 2, 4, "gap in seq: seq 3 missing")


async def test_two_rows_of_a_chain_swapped_are_reported(three_chains: AsyncEngine) -> None:
    """Reordering: seq 3 and 4 of chain 2 exchange places (through a free number: no seq shared)."""
    await execute(three_chains, "UPDATE decisions SET seq = 1000 WHERE chain = 2 AND seq = 3")
    await execute(three_chains, "UPDATE decisions SET seq = 3 WHERE chain = 2 AND seq = 4")
    await execute(three_chains, "UPDATE decisions SET seq = 4 WHERE chain = 2 AND seq = 1000")
    assert_broken(await verify_chain(three_chains), 2, 3, "prev_hash does not match seq 2")


async def test_a_writers_tail_cut_with_its_head_moved_back_is_caught_by_the_checkpoint(
    three_chains: AsyncEngine,
) -> None:
    await execute(three_chains, "DELETE FROM decisions WHERE chain = 3 AND seq > 4")
    await execute(
        three_chains,
        f"UPDATE audit_chain_head SET seq = 4, row_hash = (SELECT {hex_sql(three_chains, 'row_hash')} "
        "FROM decisions WHERE chain = 3 AND seq = 4) WHERE id = 3",
    )
    async with three_chains.connect() as conn:  # the head row now names seq 4 as the chain's end, as it should
        assert await AuditRepository(conn).get_chain_head(3) == ChainHead(
            4, (await chain_hashes(three_chains, 3))[3], 3
        )
    assert_broken(
        await verify_chain(three_chains), 3, None, "the checkpoint or anchor seq 6 is beyond the last decision (seq 4)"
    )


async def test_rows_after_the_newest_checkpoint_are_covered_by_the_head_rows_only(
    three_chains: AsyncEngine,
) -> None:
    """The window, at its boundary: a tail cut back exactly to the checkpointed head goes unnoticed; one row more
    is caught."""
    await append_on(three_chains, 3, [decision(900), decision(901)])  # seq 7 and 8, after the checkpoint
    cut_to = (
        f"UPDATE audit_chain_head SET seq = :seq, row_hash = (SELECT {hex_sql(three_chains, 'row_hash')} "
        "FROM decisions WHERE chain = 3 AND seq = :seq) WHERE id = 3"
    )
    await execute(three_chains, "DELETE FROM decisions WHERE chain = 3 AND seq > 6")
    await execute(three_chains, cut_to, seq=6)
    assert (await verify_chain(three_chains)).ok  # rows 7 and 8 were after the newest checkpoint
    await execute(three_chains, "DELETE FROM decisions WHERE chain = 3 AND seq = 6")
    await execute(three_chains, cut_to, seq=5)
    assert_broken(await verify_chain(three_chains), 3, None, "seq 6 is beyond the last decision (seq 5)")


async def test_a_writers_whole_chain_deleted_is_caught_by_the_checkpoint(three_chains: AsyncEngine) -> None:
    await execute(three_chains, "DELETE FROM decisions WHERE chain = 2")
    await execute(three_chains, "DELETE FROM audit_chain_head WHERE id = 2")
    assert_broken(
        await verify_chain(three_chains), 2, None, "the checkpoint or anchor seq 6 is beyond the last decision (seq 0)"
    )


async def test_a_chain_renumbered_is_reported_at_its_first_row(three_chains: AsyncEngine) -> None:
    """Chain 3's rows and head moved to chain 4: their hashes start from chain 3's genesis, not chain 4's."""
    await execute(three_chains, "UPDATE decisions SET chain = 4 WHERE chain = 3")
    await execute(three_chains, "UPDATE audit_chain_head SET id = 4 WHERE id = 3")
    assert_broken(await verify_chain(three_chains), 4, 1, "prev_hash does not match the genesis of chain 4")


async def test_a_deleted_or_changed_checkpoint_is_reported(three_chains: AsyncEngine) -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    await append_on(three_chains, 1, [decision(700)])
    await record_checkpoint(three_chains, later)
    await append_on(three_chains, 2, [decision(701)])
    await record_checkpoint(three_chains, later + timedelta(seconds=120))
    assert (await verify_chain(three_chains)).checkpoints == 3
    await execute(three_chains, "UPDATE audit_checkpoints SET heads = '[]' WHERE seq = 3")
    assert_broken(await verify_chain(three_chains), 0, 3, "checkpoint hash mismatch — the checkpoint was changed")
    await execute(three_chains, "DELETE FROM audit_checkpoints WHERE seq = 2")
    assert_broken(await verify_chain(three_chains), 0, 3, "expected checkpoint seq 2")


async def test_a_checkpoint_records_only_when_a_head_moved(engine: AsyncEngine) -> None:
    await seed(engine)
    now = datetime.now(UTC)
    checkpoints = Checkpoints(engine, every_s=60, clock=lambda: now)
    assert await checkpoints.record(due_after_s=0) is None  # no decisions: nothing to bind
    await append_on(engine, 1, [decision(1)])
    await append_on(engine, 5, [decision(2), decision(3)])
    first = await checkpoints.record(due_after_s=0)
    assert first is not None and first.seq == 1
    assert decode_heads(first.heads) == [
        ChainHead(1, (await chain_hashes(engine, 1))[-1], 1),
        ChainHead(2, (await chain_hashes(engine, 5))[-1], 5),
    ]
    assert await checkpoints.record(due_after_s=0) is None  # nothing moved since
    await append_on(engine, 1, [decision(4)])
    assert await checkpoints.record(due_after_s=3600) is None  # not due: the newest is younger than that
    second = await checkpoints.record(due_after_s=0)
    assert second is not None and second.seq == 2 and second.prev_hash == first.row_hash


async def chain_hashes(engine: AsyncEngine, chain: int) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT row_hash FROM decisions WHERE chain = :chain ORDER BY seq"), {"chain": chain}
        )
        return [bytes(row_hash).hex() for row_hash in found.scalars()]


async def test_an_empty_chains_head_starts_at_its_genesis(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        await AuditRepository(conn).ensure_chain_head(7)
    async with engine.connect() as conn:
        assert await AuditRepository(conn).get_chain_head(7) == ChainHead(0, genesis_hash(7), 7)
    assert genesis_hash(1) == "0" * 64 and len({genesis_hash(n) for n in range(1, 50)}) == 49
    assert (await verify_chain(engine)).ok


# --- writers -------------------------------------------------------------------------------------------------


async def test_writers_in_one_process_each_append_to_a_chain_of_their_own(pg_database_url: str) -> None:
    """Postgres: three writers committing interleaved batches claim three chains and never wait for each other's
    head: every batch after the first goes the one-statement way, none found its head moved."""
    engines = [create_engine(Settings(database_url=pg_database_url)) for _ in range(3)]
    await seed(engines[0])
    writers = [AuditWriter(engine, max_rows=8) for engine in engines]
    try:
        for wave in range(5):
            await asyncio.gather(
                *(w.write(decision(1000 * n + 10 * wave + j)) for j in range(8) for n, w in enumerate(writers))
            )
        assert sorted(w.chain for w in writers) == [1, 2, 3]
        assert [w.stats.contended for w in writers] == [0, 0, 0]
        assert all(w.stats.unlocked_batches >= w.stats.batches - 1 for w in writers)
    finally:
        for writer in writers:
            await writer.stop()
    try:
        report = await verify_chain(engines[0])
        async with engines[0].connect() as conn:
            checkpoints = await AuditRepository(conn).count_checkpoints()
    finally:
        for engine in engines:
            await engine.dispose()
    assert report.ok, str(report)
    assert report.decisions == 3 * 5 * 8
    assert sorted((h.chain, h.seq) for h in report.heads.values()) == [(1, 40), (2, 40), (3, 40)]
    assert checkpoints >= 1  # the first writer to stop recorded one; the others found nothing moved since, or did


async def test_a_writer_whose_connection_was_lost_claims_its_chain_again(pg_database_url: str) -> None:
    engine = create_engine(Settings(database_url=pg_database_url))
    await seed(engine)
    other = create_engine(Settings(database_url=pg_database_url))
    writer, rival = AuditWriter(engine), AuditWriter(other)
    try:
        await writer.write(decision(1))
        await writer.write(decision(2))
        assert writer.chain == 1
        await writer._drop_direct()  # as a restart of Postgres would: the claim is gone with the connection
        await writer.write(decision(3))
        await rival.write(decision(4))
        assert (writer.chain, rival.chain) == (1, 2)
    finally:
        await writer.stop()
        await rival.stop()
        await other.dispose()
    try:
        report = await verify_chain(engine)
    finally:
        await engine.dispose()
    assert report.ok and report.decisions == 4, str(report)
