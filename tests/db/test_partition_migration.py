"""Migration 0009 on a populated database: texts into documents, binary hashes, months into partitions (Postgres),
and back; the chain verifies and every decision reads back byte for byte on both sides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from dbutil import connect
from sqlalchemy import text
from storedrows import append_decisions

from service.db import AuditRepository, DecisionRow, create_engine
from service.db.migrate import downgrade, upgrade
from service.db.partitions import existing_months, month_range, next_month
from service.services.audit import verify_chain
from service.settings import Settings

SHA = "b" * 64
START = datetime(2026, 9, 30, 23, 0, tzinfo=UTC)


def rows() -> list[DecisionRow]:
    """40 decisions over three months; every fourth asks the same profile and gets the same answer."""
    made = []
    for n in range(40):
        repeated = n % 4 == 0
        made.append(
            DecisionRow(
                id=uuid.uuid4(),
                created_at=START + timedelta(days=n * 1.5),
                ruleset_sha256=SHA,
                ruleset_version="2026.12.1",
                caller="team-b",
                request_id=f"r-{n}",
                family="c",
                instance_type="ml.c6i.xlarge",
                scaling_method="target_tracking",
                instances=n,
                profile='{"same":true}' if repeated else f'{{"n":{n},"ü":"✓"}}',
                recommendation='{"instances":1}' if repeated else f'{{"instances":{n},"text":"{"x" * n}"}}',
                engine_version="0.3.0",
                client_request_id=None if n % 3 else f"client-{n}",
            )
        )
    return made


async def _stored(url: str) -> list[DecisionRow]:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as conn:
            repo = AuditRepository(conn)
            return [link.decision async for link in repo.stream_chain(batch_size=7)]
    finally:
        await engine.dispose()


async def test_0009_converts_a_populated_database_and_back(database_url: str) -> None:
    written = rows()
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.begin() as conn:
            repo = AuditRepository(conn)
            await repo.save_ruleset(SHA, "2026.12.1", "test", {"a.yaml": "a: 1\n"}, START)
            await append_decisions(conn, written)
        before = await verify_chain(engine)
    finally:
        await engine.dispose()
    assert before.ok and before.decisions == 40

    await downgrade(database_url, "0008")  # the texts back in the rows, hashes as hex
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.connect() as conn:
            old = (
                await conn.execute(text("SELECT profile, recommendation, row_hash FROM decisions ORDER BY seq"))
            ).all()
    finally:
        await engine.dispose()
    assert [(p, r) for p, r, _ in old] == [(d.profile, d.recommendation) for d in written]
    assert all(len(h) == 64 for _, _, h in old)

    await upgrade(database_url)  # the populated 0008 table converted again
    assert await _stored(database_url) == written
    engine = create_engine(Settings(database_url=database_url))
    try:
        after = await verify_chain(engine)
        async with engine.connect() as conn:
            documents = await conn.scalar(text("SELECT count(*) FROM audit_documents"))
            if conn.dialect.name == "postgresql":
                months = await existing_months(conn)
                assert set(month_range(202609, 202611)) <= set(months)
                in_october = await conn.scalar(text("SELECT count(*) FROM decisions_y2026m10"))
                assert in_october == sum(1 for d in written if d.created_at.month == 10)
    finally:
        await engine.dispose()
    assert after.ok, after.broken
    assert (after.decisions, after.head) == (before.decisions, before.head)
    # 30 distinct profiles and answers, and the repeated pair once in each of the three months.
    assert documents == 30 * 2 + 3 * 2


async def test_upgrade_keeps_the_months_ahead_ready(pg_database_url: str) -> None:
    await upgrade(pg_database_url, partition_months_ahead=3)
    conn = await connect(pg_database_url)
    try:
        names = {r[0] for r in await conn.fetch("SELECT relname::text FROM pg_class WHERE relname LIKE 'decisions_y%'")}
    finally:
        await conn.close()
    now = datetime.now(UTC)
    current = now.year * 100 + now.month
    ahead = [current]
    for _ in range(3):
        ahead.append(next_month(ahead[-1]))
    assert {f"decisions_y{m // 100}m{m % 100:02d}" for m in ahead} <= names
