"""The audit hash chain: verify after concurrent writes, and tampering behind the service's back."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import os
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from auditutil import SHA, MakeWriter, decision, document_of, frozen_row, seed, store_document, unprotect
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import AuditRepository, DecisionRow, create_engine
from service.db.chain import GENESIS_HASH, ChainHead, canonical_timestamp, chain_hash
from service.db.chain import _encode as chain_encode
from service.db.documents import month_of
from service.services.audit import AuditWriter, ChainReport, verify_chain
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


async def fill(writer: AuditWriter, n: int) -> list[DecisionRow]:
    rows = [decision(i) for i in range(n)]
    await asyncio.gather(*(writer.write(row) for row in rows))
    return rows


async def links(engine: AsyncEngine) -> list[tuple[int, str, str, uuid.UUID]]:
    """(seq, prev_hash, row_hash, id) of every decision, in seq order (the hashes as hex; stored as 32 bytes)."""
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT seq, prev_hash, row_hash, id FROM decisions ORDER BY seq"))
        return [(int(r[0]), bytes(r[1]).hex(), bytes(r[2]).hex(), uuid.UUID(str(r[3]))) for r in result]


def id_param(engine: AsyncEngine, decision_id: uuid.UUID) -> object:
    return decision_id.hex if engine.dialect.name == "sqlite" else decision_id


async def execute(engine: AsyncEngine, sql: str, **params: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


async def shift(engine: AsyncEngine, *, after: int, by: int) -> None:
    """Renumber the rows with seq > ``after`` by ``by`` (through negative numbers: no seq shared)."""
    await execute(engine, "UPDATE decisions SET seq = -(seq + :by) WHERE seq > :after", by=by, after=after)
    await execute(engine, "UPDATE decisions SET seq = -seq WHERE seq < 0")


def assert_broken(report: ChainReport, seq: int | None, *phrases: str) -> None:
    assert not report.ok, str(report)
    assert report.broken is not None
    assert report.broken.seq == seq, str(report.broken)
    for phrase in phrases:
        assert phrase in str(report.broken), str(report.broken)


@pytest.fixture
async def chain(engine: AsyncEngine, make_writer: MakeWriter) -> list[tuple[int, str, str, uuid.UUID]]:
    """20 decisions written through the writer, then the append-only triggers lifted."""
    await fill(make_writer(max_wait_ms=1), 20)
    await unprotect(engine)
    found = await links(engine)
    assert [s for s, *_ in found] == list(range(1, 21))
    return found


# --- a healthy chain -----------------------------------------------------------------------------------------


async def test_empty_chain_verifies(engine: AsyncEngine) -> None:
    report = await verify_chain(engine)
    assert report.ok
    assert str(report) == f"ok: 0 decisions, chain head {GENESIS_HASH}"


async def test_chain_verifies_after_500_concurrent_writes(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(max_rows=64, max_wait_ms=1)
    rows = await fill(writer, 500)
    assert writer.stats.batches > 1  # several batches, each continuing the chain
    found = await links(engine)
    assert [s for s, *_ in found] == list(range(1, 501))
    assert {i for *_, i in found} == {r.id for r in rows}
    assert found[0][1] == GENESIS_HASH
    assert all(prev == before[2] for before, (_, prev, _, _) in itertools.pairwise(found))

    report = await verify_chain(engine, batch_size=37)
    assert report.ok, str(report)
    assert report.decisions == 500
    assert report.head == ChainHead(500, found[-1][2])
    assert str(report) == f"ok: 500 decisions, chain head {found[-1][2]}"
    async with engine.connect() as conn:
        assert await AuditRepository(conn).get_chain_head() == report.head


async def test_row_hash_covers_every_stored_field(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    row = decision(instances=None, family=None)
    await make_writer(max_wait_ms=0).write(row)
    [(seq, prev_hash, row_hash, _)] = await links(engine)
    assert row_hash == chain_hash(seq, prev_hash, row)
    for field in DecisionRow.__slots__:
        if field == "id":
            continue
        changed = {
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            "instances": 3,
        }.get(field, "x")
        altered = DecisionRow(**{f: getattr(row, f) for f in DecisionRow.__slots__} | {field: changed})
        assert chain_hash(seq, prev_hash, altered) != row_hash, field
    assert chain_hash(seq + 1, prev_hash, row) != row_hash
    assert chain_hash(seq, "1" * 64, row) != row_hash


def test_chain_hash_format_is_frozen() -> None:
    """Rows hashed by this release must verify under every later one: the encoding must not drift."""
    row = frozen_row()
    encoding = (
        '["advisor-audit-chain/1",1,"' + "0" * 64 + '","01930000-0000-7000-8000-000000000001",'
        '"2026-11-29T12:00:00.000000Z","' + "a" * 64 + '","2026.11.1","key:ci","req-1","g","ml.g5.xlarge",null,2,'
        '"{\\"name\\":\\"ünïcode\\"}","{}"]'
    )
    assert hashlib.sha256(encoding.encode()).hexdigest() == EXPECTED_FROZEN_HASH
    assert chain_hash(1, GENESIS_HASH, row) == EXPECTED_FROZEN_HASH


EXPECTED_FROZEN_HASH = "1a7c26dd2814ffa4140e71e642f6d0b3ca9b06e113f1a607510a0b1aae42b353"


@settings(max_examples=500)
@given(st.lists(st.one_of(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.none()), max_size=16))
def test_the_fast_encoding_writes_the_frozen_bytes(fields: list[str | int | None]) -> None:
    """The chain's encoder is msgspec; the format was defined by the stdlib's json, lone surrogates included."""
    frozen = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert chain_encode(fields) == frozen.encode("utf-8", "surrogatepass")


def _frozen_hash(seq: int, prev_hash: str, row: DecisionRow) -> str:
    """The row hash as the format defines it: SHA-256 of the stdlib's compact JSON of the whole array."""
    engine = [] if row.engine_version is None else [row.engine_version]
    fields = [
        "advisor-audit-chain/1" if row.engine_version is None else "advisor-audit-chain/2",
        seq,
        prev_hash,
        str(row.id),
        row.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        row.ruleset_sha256,
        row.ruleset_version,
        *engine,
        row.caller,
        row.request_id,
        row.family,
        row.instance_type,
        row.scaling_method,
        row.instances,
        row.profile,
        row.recommendation,
    ]
    frozen = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(frozen.encode("utf-8", "surrogatepass")).hexdigest()


@settings(max_examples=300)
@given(
    seq=st.integers(min_value=1, max_value=2**62),
    profile=st.text(),
    recommendation=st.text(),
    scaling_method=st.one_of(st.none(), st.text()),
    engine_version=st.one_of(st.none(), st.text()),
)
def test_chain_hash_is_the_frozen_hash_also_for_a_recommendation_seen_before(
    seq: int, profile: str, recommendation: str, scaling_method: str | None, engine_version: str | None
) -> None:
    """The recommendation's encoding is remembered by identity (a memo hit brings the same str object): hashing
    the same object again, an equal copy, or another text after it must give the format's hash every time."""
    row = decision(
        0,
        profile=profile,
        recommendation=recommendation,
        scaling_method=scaling_method,
        engine_version=engine_version,
    )
    expected = _frozen_hash(seq, "f" * 64, row)
    assert chain_hash(seq, "f" * 64, row) == expected
    assert chain_hash(seq, "f" * 64, row) == expected  # remembered
    equal_copy = dataclasses.replace(row, recommendation="".join(list(recommendation)))
    assert chain_hash(seq, "f" * 64, equal_copy) == expected
    other = dataclasses.replace(row, recommendation=recommendation + "x")
    assert chain_hash(seq, "f" * 64, other) == _frozen_hash(seq, "f" * 64, other)


@settings(max_examples=500)
@given(st.datetimes(timezones=st.timezones()))
def test_the_fast_timestamp_writes_the_frozen_text(value: datetime) -> None:
    assert canonical_timestamp(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- tampering -------------------------------------------------------------------------------------------------


async def test_an_updated_row_is_reported_at_its_seq(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    await execute(engine, "UPDATE decisions SET caller = 'mallory' WHERE seq = 7")
    assert_broken(await verify_chain(engine), 7, "row hash mismatch — the row was changed", str(chain[6][3]))


async def test_an_updated_recommendation_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    """The answer's stored bytes rewritten in place (plain text now): they no longer hash to the name the row
    stores, and the row's hash covers that name's text."""
    month, sha256 = await document_of(engine, 1, "recommendation")
    await execute(
        engine,
        "UPDATE audit_documents SET codec = 0, dictionary = NULL, body = :b WHERE month = :m AND sha256 = :s",
        b=b'{"instances":1000}',
        m=month,
        s=sha256,
    )
    assert_broken(await verify_chain(engine), 1, "its recommendation document was changed", f"(decision {chain[0][3]})")


async def test_an_updated_profile_is_reported_at_its_seq(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    month, sha256 = await document_of(engine, 12, "profile")
    changed = b'{"n":11,"name":"mallory"}'
    await execute(
        engine,
        "UPDATE audit_documents SET codec = 0, body = :b WHERE month = :m AND sha256 = :s",
        b=changed,
        m=month,
        s=sha256,
    )
    report = await verify_chain(engine)
    assert_broken(report, 12, "its profile document was changed")
    assert report.decisions == 11  # every row before it checked out


async def test_a_row_pointed_at_another_recommendation_is_reported(
    engine: AsyncEngine, chain: list[tuple[int, ...]]
) -> None:
    """A new, well-formed document and the row renamed to it: the text decodes, but the row's hash covered the
    answer it had."""
    month, _ = await document_of(engine, 4, "recommendation")
    forged = await store_document(engine, month, '{"instances":1000}')
    await execute(engine, "UPDATE decisions SET recommendation_sha256 = :s WHERE seq = 4", s=forged)
    assert_broken(await verify_chain(engine), 4, "row hash mismatch — the row was changed")


async def test_a_deleted_document_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    month, sha256 = await document_of(engine, 9, "profile")
    await execute(engine, "DELETE FROM audit_documents WHERE month = :m AND sha256 = :s", m=month, s=sha256)
    assert_broken(await verify_chain(engine, batch_size=5), 9, "its profile document is missing — it was deleted")


async def test_an_updated_row_with_a_recomputed_hash_breaks_the_next_link(
    engine: AsyncEngine, chain: list[tuple[int, ...]]
) -> None:
    """A forger who knows the scheme re-hashes the changed row: the next row's prev_hash no longer matches."""
    async with engine.connect() as conn:
        original = await AuditRepository(conn).get_decision(chain[6][3])  # type: ignore[arg-type]
    assert original is not None
    forged = DecisionRow(**{f: getattr(original, f) for f in DecisionRow.__slots__} | {"instances": 99})
    await execute(
        engine,
        "UPDATE decisions SET instances = 99, row_hash = :h WHERE seq = 7",
        h=bytes.fromhex(chain_hash(7, str(chain[6][1]), forged)),
    )
    assert_broken(await verify_chain(engine), 8, "prev_hash does not match seq 7 — a row was deleted or inserted")


async def test_a_deleted_row_is_reported_as_a_gap(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    await execute(engine, "DELETE FROM decisions WHERE seq = 7")
    report = await verify_chain(engine)
    assert_broken(report, 8, "gap in seq: seq 7 missing — a row was deleted")
    assert report.decisions == 6


async def test_a_deleted_row_renumbered_over_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    """Deleting seq 7 and moving the later rows down one closes the gap, but seq 8's prev_hash names seq 7."""
    await execute(engine, "DELETE FROM decisions WHERE seq = 7")
    await shift(engine, after=7, by=-1)
    assert_broken(await verify_chain(engine), 7, "prev_hash does not match seq 6 — a row was deleted or inserted")


async def test_a_deleted_first_row_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    await execute(engine, "DELETE FROM decisions WHERE seq = 1")
    assert_broken(await verify_chain(engine), 2, "gap in seq: seq 1 missing")


async def test_a_deleted_tail_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    await execute(engine, "DELETE FROM decisions WHERE seq >= 19")
    report = await verify_chain(engine)
    assert_broken(report, 19, "chain head records seq 20 but the last decision is seq 18", "seq 19..20 gone")
    assert report.decisions == 18


async def test_a_deleted_tail_with_the_head_moved_back_is_caught_by_an_anchor(
    engine: AsyncEngine, chain: list[tuple[int, ...]]
) -> None:
    anchor = ChainHead(20, str(chain[19][2]))
    assert (await verify_chain(engine, anchor=anchor)).ok
    await execute(engine, "DELETE FROM decisions WHERE seq = 20")
    await execute(engine, "UPDATE audit_chain_head SET seq = 19, row_hash = :h", h=chain[18][2])
    assert (await verify_chain(engine)).ok  # consistent again: only a hash kept elsewhere can tell
    assert_broken(await verify_chain(engine, anchor=anchor), None, "anchor seq 20 is beyond the last decision")


async def test_a_changed_head_row_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    await execute(engine, "UPDATE audit_chain_head SET row_hash = :h", h="e" * 64)
    assert_broken(await verify_chain(engine), None, "chain head hash", "the head row was changed")


async def test_an_anchor_must_match(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    """A head recorded elsewhere catches even a chain rewritten consistently from that seq on."""
    assert (await verify_chain(engine, anchor=ChainHead(5, str(chain[4][2])))).ok
    assert_broken(await verify_chain(engine, anchor=ChainHead(5, "f" * 64)), 5, "differs from the anchor")


async def test_an_appended_row_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    """A forger appends a row with a correct seq, prev_hash and row_hash: the chain head does not know it."""
    await _insert_forged(engine, seq=21, prev_hash=str(chain[19][2]))
    assert_broken(await verify_chain(engine), 21, "beyond the chain head (seq 20) — a row was appended")


async def test_an_appended_row_with_a_made_up_hash_is_reported(
    engine: AsyncEngine, chain: list[tuple[int, ...]]
) -> None:
    await _insert_forged(engine, seq=21, prev_hash="0" * 64, row_hash="1" * 64)
    assert_broken(await verify_chain(engine), 21, "a row was appended")


async def test_a_row_inserted_with_a_repeated_seq_is_reported(
    engine: AsyncEngine, chain: list[tuple[int, ...]]
) -> None:
    """(chain, seq) is not unique in the schema (a partitioned table's unique index must hold its partition key;
    the chain heads keep it unique): a forged row can sit between two others."""
    await _insert_forged(engine, seq=7, prev_hash=str(chain[5][2]))
    report = await verify_chain(engine)
    assert_broken(report, 7, "seq 7 again after seq 7")


async def test_a_row_inserted_in_the_middle_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    """Moving the later rows up one to make room at seq 11 for a correctly hashed forgery breaks the next link."""
    await shift(engine, after=10, by=1)
    await _insert_forged(engine, seq=11, prev_hash=str(chain[9][2]))
    assert_broken(await verify_chain(engine), 12, "prev_hash does not match seq 11 — a row was deleted or inserted")


async def test_a_deleted_head_row_is_reported(engine: AsyncEngine, chain: list[tuple[int, ...]]) -> None:
    await execute(engine, "DELETE FROM audit_chain_head")
    assert_broken(await verify_chain(engine), None, "audit_chain_head row is missing")


async def _insert_forged(engine: AsyncEngine, *, seq: int, prev_hash: str, row_hash: str | None = None) -> None:
    """A decision inserted behind the writer's back, its profile and answer stored as documents beside it."""
    forged = decision(9999, caller="mallory")
    month = month_of(forged.created_at)
    texts = {"profile_sha256": forged.profile, "recommendation_sha256": forged.recommendation}
    names = {column: await store_document(engine, month, body) for column, body in texts.items()}
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO decisions (id, created_at, ruleset_sha256, ruleset_version, caller, request_id, family, "
                "instance_type, scaling_method, instances, profile_sha256, recommendation_sha256, seq, prev_hash, "
                "row_hash) VALUES (:id, :created_at, :ruleset_sha256, :ruleset_version, :caller, :request_id, "
                ":family, :instance_type, :scaling_method, :instances, :profile_sha256, :recommendation_sha256, "
                ":seq, :prev_hash, :row_hash)"
            ),
            {f: getattr(forged, f) for f in DecisionRow.__slots__ if f not in ("profile", "recommendation")}
            | names
            | {
                "id": id_param(engine, forged.id),
                "created_at": forged.created_at
                if engine.dialect.name == "postgresql"
                else forged.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "ruleset_sha256": bytes.fromhex(forged.ruleset_sha256),
                "seq": seq,
                "prev_hash": bytes.fromhex(prev_hash),
                "row_hash": bytes.fromhex(row_hash or chain_hash(seq, prev_hash, forged)),
            },
        )


# --- several writers -------------------------------------------------------------------------------------------


async def test_two_engines_writing_at_once_keep_one_chain(engine: AsyncEngine, database_url: str) -> None:
    """Two engines and writers (two workers' worth) interleave their batches into one valid chain."""
    other = create_engine(Settings(database_url=database_url))
    first, second = AuditWriter(engine, max_rows=32, max_wait_ms=1), AuditWriter(other, max_rows=32, max_wait_ms=1)
    try:
        rows = [decision(i) for i in range(400)]
        await asyncio.gather(*(w.write(r) for w, r in zip([first, second] * 200, rows, strict=True)))
    finally:
        await first.stop()
        await second.stop()
        await other.dispose()
    assert first.stats.batches > 1 and second.stats.batches > 1
    report = await verify_chain(engine)
    assert report.ok, str(report)
    assert report.decisions == 400


async def test_a_writer_appends_after_its_own_last_batch_until_another_writer_moves_the_head(
    pg_database_url: str,
) -> None:
    """Postgres: after its first (locked) batch a writer appends in one statement after the head it left; when
    another writer moved the head in between, that statement stores nothing and the batch goes the locked way.
    Two writers share a chain only when there are not enough chains to claim (max_chains=1 here). (SQLite has no
    such path: every batch takes the database lock.)"""
    engine = create_engine(Settings(database_url=pg_database_url))
    await seed(engine)
    other = create_engine(Settings(database_url=pg_database_url))
    first = AuditWriter(engine, max_rows=8, max_wait_ms=0, max_chains=1)
    second = AuditWriter(other, max_rows=8, max_wait_ms=0, max_chains=1)
    try:
        for i in range(3):  # three batches, one after another
            await asyncio.gather(*(first.write(decision(10 * i + j)) for j in range(4)))
        assert (first.stats.batches, first.stats.unlocked_batches, first.stats.contended) == (3, 2, 0)
        await second.write(decision(100))  # the head moves under the first writer
        await asyncio.gather(*(first.write(decision(200 + j)) for j in range(4)))
        assert (first.stats.batches, first.stats.unlocked_batches, first.stats.contended) == (4, 2, 1)
    finally:
        await first.stop()
        await second.stop()
        await other.dispose()
    try:
        report = await verify_chain(engine)
    finally:
        await engine.dispose()
    assert report.ok, str(report)
    assert report.decisions == 3 * 4 + 1 + 4
    assert first.chain == second.chain == 1


WORKER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime
    from uuid_utils.compat import uuid7
    from service.services.audit import AuditWriter
    from service.db import DecisionRow, create_engine
    from service.settings import Settings

    async def main(url: str, n: int, name: str) -> None:
        engine = create_engine(Settings(database_url=url))
        writer = AuditWriter(engine, max_rows=16, max_wait_ms=1)
        rows = [
            DecisionRow(uuid7(), datetime.now(UTC), sys.argv[4], "v", name, f"r{i}", None, None, None, i, "{}", "{}")
            for i in range(n)
        ]
        for start in range(0, n, 50):  # waves, so both processes are writing for a while
            await asyncio.gather(*(writer.write(r) for r in rows[start : start + 50]))
        await writer.stop()
        await engine.dispose()
        print(writer.stats.batches, writer.chain, writer.stats.contended)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
    """
)


async def test_two_processes_writing_at_once_keep_their_chains(engine: AsyncEngine, database_url: str) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER_SCRIPT,
            database_url,
            "300",
            f"worker-{n}",
            SHA,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(2)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=120)
    stats = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        batches, chain, contended = map(int, out.split())
        assert batches > 1  # several batches each
        stats.append((chain, contended))
    report = await verify_chain(engine)
    assert report.ok, str(report)
    assert report.decisions == 600
    async with engine.connect() as conn:
        callers = (await conn.execute(text("SELECT caller FROM decisions ORDER BY chain, seq"))).scalars().all()
        spans = (
            await conn.execute(
                text("SELECT min(created_at), max(created_at) FROM decisions GROUP BY caller ORDER BY caller")
            )
        ).all()
    assert sorted(callers) == ["worker-0"] * 300 + ["worker-1"] * 300
    overlapped = spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]
    if engine.dialect.name == "postgresql" and overlapped:
        # Writing at the same time, each held a chain of its own, and neither ever found its head moved.
        assert stats[0][0] != stats[1][0] and stats[0][1] == stats[1][1] == 0, stats
    # SQLite keeps one chain: there the two take turns on the database lock, and the chain verifies all the same.
