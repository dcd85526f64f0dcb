"""client_request_id (migration 0007): the client's X-Request-ID kept apart from the service's request id, covered
by the hash chain, NULL for rows stored before it; the release before still writes on the new schema."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import sqlalchemy as sa
from auditutil import MakeWriter, assert_edit_is_caught, decision, frozen_row, seed
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import append_decisions
from test_engine_version import EXPECTED_FROZEN_ENGINE_HASH

from service.db import AuditRepository, create_engine
from service.db.chain import GENESIS_HASH, chain_hash
from service.db.migrate import current_revision, downgrade, head_revision, upgrade
from service.services.audit import verify_chain
from service.settings import Settings

BEFORE = "0006"  # the revision before client_request_id
EXPECTED_FROZEN_CLIENT_ID_HASH = "976bcaa2fada775fb7191405845ef06eb06f4a48ddf7ae6b52c9b7276fa45663"


def test_chain_hash_format_with_a_client_request_id_is_frozen() -> None:
    """A row with a client_request_id is hashed in the third layout: the engine version follows ruleset_version
    and the client id follows request_id. The same row without one keeps the second layout's hash."""
    row = frozen_row(engine_version="0.2.0", client_request_id="client-7")
    encoding = (
        '["advisor-audit-chain/3",1,"' + "0" * 64 + '","01930000-0000-7000-8000-000000000001",'
        '"2026-11-29T12:00:00.000000Z","' + "a" * 64 + '","2026.11.1","0.2.0","key:ci","req-1","client-7","g",'
        '"ml.g5.xlarge",null,2,"{\\"name\\":\\"ünïcode\\"}","{}"]'
    )
    assert hashlib.sha256(encoding.encode()).hexdigest() == EXPECTED_FROZEN_CLIENT_ID_HASH
    assert chain_hash(1, GENESIS_HASH, row) == EXPECTED_FROZEN_CLIENT_ID_HASH
    assert chain_hash(1, GENESIS_HASH, dataclasses.replace(row, client_request_id=None)) == EXPECTED_FROZEN_ENGINE_HASH
    without_engine = dataclasses.replace(row, engine_version=None)
    assert chain_hash(1, GENESIS_HASH, without_engine) not in (EXPECTED_FROZEN_CLIENT_ID_HASH, GENESIS_HASH)


async def test_the_writer_stores_it(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    rows = [decision(0, engine_version="0.3.0", client_request_id="c-1"), decision(1, engine_version="0.3.0")]
    writer = make_writer()
    for row in rows:
        await writer.write(row)
    await writer.write(decision(3, engine_version="0.3.0", client_request_id="c-1"))
    async with engine.connect() as conn:
        assert [await AuditRepository(conn).get_decision(row.id) for row in rows] == rows
        kept = (await conn.execute(sa.text("SELECT client_request_id FROM decisions ORDER BY seq"))).scalars()
        assert list(kept) == ["c-1", None, "c-1"]
    report = await verify_chain(engine)
    assert report.ok and report.decisions == 3, str(report)


EDITS = {
    "a client id changed": ("'someone-else'", 1),
    "a client id removed": ("NULL", 1),
    "a client id added to a row without one": ("'c-9'", 2),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
async def test_verify_catches_an_edited_client_request_id(
    engine: AsyncEngine, make_writer: MakeWriter, edit: str
) -> None:
    value, seq = EDITS[edit]
    writer = make_writer()
    for row in (decision(0, engine_version="0.3.0", client_request_id="c-1"), decision(1, engine_version="0.3.0")):
        await writer.write(row)
    await assert_edit_is_caught(engine, "client_request_id", value, seq)


async def test_downgrade_is_refused_while_decisions_carry_a_client_request_id(database_url: str) -> None:
    engine = create_engine(Settings(database_url=database_url))
    try:
        await seed(engine)
        async with engine.begin() as conn:
            await append_decisions(conn, [decision(0, engine_version="0.3.0")])
        await engine.dispose()
        await downgrade(database_url, BEFORE)  # nothing to lose: allowed
        await upgrade(database_url)

        async with engine.begin() as conn:
            await append_decisions(conn, [decision(1, engine_version="0.3.0", client_request_id="c-1")])
        await engine.dispose()
        with pytest.raises(RuntimeError, match=r"refusing to drop decisions.client_request_id: 1 decision\(s\)"):
            await downgrade(database_url, BEFORE)
        assert await current_revision(database_url) == head_revision()
        report = await verify_chain(engine)
        assert report.ok and report.decisions == 2
    finally:
        await engine.dispose()
