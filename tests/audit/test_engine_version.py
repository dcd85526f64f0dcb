"""engine_version (migration 0006): recorded with every decision, covered by the hash chain, NULL for rows stored
before it, and the release before still writes on the new schema."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import asyncpg
import pytest
import sqlalchemy as sa
from auditutil import MakeClient, MakeWriter, assert_edit_is_caught, decision, frozen_row, seed
from dbutil import connect
from profiles import WORKED_EXAMPLE
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import append_decisions

from service import __version__
from service.db import AuditRepository, DecisionRow, create_engine
from service.db.chain import GENESIS_HASH, chain_hash
from service.db.connection import write_transaction
from service.db.migrate import current_revision, downgrade, head_revision, upgrade
from service.db.tables import UTCDateTime, audit_chain_head
from service.services.audit import verify_chain
from service.settings import Settings

BEFORE = "0005"  # the revision before engine_version
PREVIOUS_RELEASE_FIELDS = [
    name for name in DecisionRow.__slots__ if name not in ("engine_version", "client_request_id")
]
CHAIN_COLUMNS = ("seq", "prev_hash", "row_hash")
# What the release before sends on Postgres (service/db/repository.py before 0006), with its row type.
PREVIOUS_RELEASE_PG_APPEND = (
    "WITH moved AS (UPDATE audit_chain_head SET seq = $2, row_hash = $3 "
    "WHERE id = 1 AND seq = $4 AND row_hash = $5 RETURNING 1), "
    "new AS (INSERT INTO decisions ({columns}) SELECT * FROM unnest($1::decision_append_row[]) "
    "WHERE EXISTS (SELECT FROM moved) RETURNING 1) "
    "SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM moved)"
).format(columns=", ".join([*PREVIOUS_RELEASE_FIELDS, *CHAIN_COLUMNS]))
# The decisions table as the release before knows it.
_TYPES = {"id": sa.Uuid(as_uuid=True), "created_at": UTCDateTime(), "instances": sa.Integer(), "seq": sa.BigInteger()}
previous_release_decisions = sa.table(
    "decisions",
    *(sa.column(name, _TYPES.get(name, sa.String())) for name in (*PREVIOUS_RELEASE_FIELDS, *CHAIN_COLUMNS)),
)


async def write_as_previous_release(engine: AsyncEngine, url: str, rows: Sequence[DecisionRow]) -> None:
    """Append ``rows`` as the release before 0006 does: without engine_version, on Postgres in one statement
    with its row type ``decision_append_row``."""
    async with engine.connect() as conn:
        head = await AuditRepository(conn).get_chain_head()
    assert head is not None
    seq, prev_hash, chained = head.seq, head.row_hash, []
    for row in rows:
        assert row.engine_version is None  # that release cannot record one
        seq += 1
        row_hash = chain_hash(seq, prev_hash, row)
        chained.append((*(getattr(row, name) for name in PREVIOUS_RELEASE_FIELDS), seq, prev_hash, row_hash))
        prev_hash = row_hash
    if engine.dialect.name == "postgresql":
        driver = await connect(url)
        try:
            record = await driver.fetchrow(PREVIOUS_RELEASE_PG_APPEND, chained, seq, prev_hash, head.seq, head.row_hash)
        finally:
            await driver.close()
        assert tuple(record) == (len(rows), 1)
        return
    names = [*PREVIOUS_RELEASE_FIELDS, *CHAIN_COLUMNS]
    async with write_transaction(engine) as conn:
        await conn.execute(sa.insert(previous_release_decisions), [dict(zip(names, r, strict=True)) for r in chained])
        await conn.execute(sa.update(audit_chain_head).values(seq=seq, row_hash=prev_hash))


async def stored(engine: AsyncEngine, row: DecisionRow) -> DecisionRow | None:
    async with engine.connect() as conn:
        return await AuditRepository(conn).get_decision(row.id)


# --- the hash chain covers it -----------------------------------------------------------------------------------


def test_chain_hash_format_with_an_engine_version_is_frozen() -> None:
    """A row with an engine_version (migration 0006) is hashed in the second layout: the version follows
    ruleset_version. The same row without one keeps the first layout's hash."""
    row = frozen_row(engine_version="0.2.0")
    encoding = (
        '["advisor-audit-chain/2",1,"' + "0" * 64 + '","01930000-0000-7000-8000-000000000001",'
        '"2026-11-29T12:00:00.000000Z","' + "a" * 64 + '","2026.11.1","0.2.0","key:ci","req-1","g",'
        '"ml.g5.xlarge",null,2,"{\\"name\\":\\"ünïcode\\"}","{}"]'
    )
    assert hashlib.sha256(encoding.encode()).hexdigest() == EXPECTED_FROZEN_ENGINE_HASH
    assert chain_hash(1, GENESIS_HASH, row) == EXPECTED_FROZEN_ENGINE_HASH
    assert chain_hash(1, GENESIS_HASH, dataclasses.replace(row, engine_version=None)) == EXPECTED_FROZEN_HASH


EXPECTED_FROZEN_ENGINE_HASH = "d2111babce9fd1d46ef9ab721ee1ff595edb7e06281aa5fd3b580275b0c0bd36"
EXPECTED_FROZEN_HASH = "1a7c26dd2814ffa4140e71e642f6d0b3ca9b06e113f1a607510a0b1aae42b353"  # test_chain.py's


# --- written and read back ---------------------------------------------------------------------------------------


async def test_a_decision_records_the_running_engine_version(engine: AsyncEngine, make_client: MakeClient) -> None:
    async with make_client() as client:
        answer = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
        assert answer.status_code == 201, answer.text
        decision_id = answer.json()["decision_id"]
        record = (await client.get(f"/v1/decisions/{decision_id}")).json()
        listed = (await client.get("/v1/decisions")).json()["items"]
    assert __version__ == "0.3.0.dev0"
    assert record["engine_version"] == __version__
    assert [item["engine_version"] for item in listed if item["decision_id"] == decision_id] == [__version__]
    async with engine.connect() as conn:
        column = await conn.scalar(sa.text("SELECT engine_version FROM decisions"))
    assert column == __version__
    assert (await verify_chain(engine)).ok


async def test_an_idempotent_retry_answers_the_stored_decision_unchanged(make_client: MakeClient) -> None:
    async with make_client() as client:
        headers = {"Idempotency-Key": "retry-1"}
        first = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=headers)
        again = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=headers)
    assert first.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert "engine_version" not in first.json()  # the answer itself is unchanged: the version is in the record


async def test_the_writer_stores_what_the_row_says(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    rows = [decision(0, engine_version="0.2.0"), decision(1), decision(2, engine_version="0.1.0")]
    writer = make_writer()
    for row in rows:
        await writer.write(row)
    assert [await stored(engine, row) for row in rows] == rows
    report = await verify_chain(engine)
    assert report.ok and report.decisions == 3


# --- tampering with it ---------------------------------------------------------------------------------------------

# seq 1 and 3 carry a version, seq 2 does not: (new value, seq).
EDITS = {
    "a version changed": ("'0.1.9'", 1),
    "a version removed": ("NULL", 3),
    "a version added to a row without one": ("'0.2.0'", 2),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
async def test_verify_catches_an_edited_engine_version(engine: AsyncEngine, make_writer: MakeWriter, edit: str) -> None:
    value, seq = EDITS[edit]
    writer = make_writer()
    for row in (decision(0, engine_version="0.2.0"), decision(1), decision(2, engine_version="0.2.0")):
        await writer.write(row)
    assert (await verify_chain(engine)).ok
    await assert_edit_is_caught(engine, "engine_version", value, seq)


# --- the migration -------------------------------------------------------------------------------------------------


async def test_rows_stored_before_the_column_read_back_as_null_and_still_verify(blank_database_url: str) -> None:
    url = blank_database_url
    await upgrade(url, BEFORE)
    engine = create_engine(Settings(database_url=url))
    try:
        await seed(engine)
        old = [decision(i) for i in range(3)]
        await write_as_previous_release(engine, url, old)
        async with engine.connect() as conn:
            head = await AuditRepository(conn).get_chain_head()
        await engine.dispose()

        await upgrade(url)
        assert [await stored(engine, row) for row in old] == old  # engine_version None: not recorded
        report = await verify_chain(engine)
        assert report.ok and report.head == head  # the same hashes: nothing was rehashed
        with pytest.raises(DBAPIError, match="append-only"):  # the triggers survived the new column
            async with engine.begin() as conn:
                await conn.execute(sa.text("UPDATE decisions SET engine_version = '0.1.0'"))

        async with engine.begin() as conn:
            await append_decisions(conn, [decision(3, engine_version="0.2.0")])
        report = await verify_chain(engine)
        assert report.ok and report.decisions == 4
    finally:
        await engine.dispose()


async def test_the_release_before_0009_cannot_write_on_this_schema_and_stores_nothing(
    engine: AsyncEngine, database_url: str, make_writer: MakeWriter
) -> None:
    """Migration 0009 moved the texts out of the rows (deploy/README.md: upgrade with the old pods stopped): a
    release before it fails to write, as a whole, and the chain stays intact."""
    writer = make_writer()
    await writer.write(decision(0, engine_version="0.2.0"))
    with pytest.raises((asyncpg.PostgresError, sa.exc.DBAPIError), match="profile"):
        await write_as_previous_release(engine, database_url, [decision(1), decision(2)])
    await writer.write(decision(3, engine_version="0.2.0"))
    report = await verify_chain(engine)
    assert report.ok and report.decisions == 2


async def test_downgrade_is_refused_while_decisions_carry_an_engine_version(database_url: str) -> None:
    engine = create_engine(Settings(database_url=database_url))
    try:
        await seed(engine)
        async with engine.begin() as conn:
            await append_decisions(conn, [decision(0)])
        await engine.dispose()
        await downgrade(database_url, BEFORE)  # nothing to lose: allowed
        await upgrade(database_url)

        async with engine.begin() as conn:
            await append_decisions(conn, [decision(1, engine_version="0.2.0")])
        await engine.dispose()
        with pytest.raises(RuntimeError, match=r"refusing to drop decisions.engine_version: 1 decision\(s\)"):
            await downgrade(database_url, BEFORE)
        assert await current_revision(database_url) == head_revision()
        report = await verify_chain(engine)
        assert report.ok and report.decisions == 2
    finally:
        await engine.dispose()
