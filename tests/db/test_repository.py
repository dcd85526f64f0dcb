"""AuditRepository on SQLite and Postgres."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from dbutil import decision_inserts, document_inserts, recorded_statements, uuid7_at
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import append_decisions, decision_count
from uuid_utils.compat import uuid7

from service.db import AuditRepository, DecisionRow, RulesetRow, RulesetSummary
from service.db.repository import AmbiguousRulesetVersion, ListedDecision
from service.services.audit import verify_chain

T0 = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64
FAMILIES = ("ml.g5", "ml.c7i", "ml.inf2")
SCALING = ("target-tracking", "step", None)


def decision(created_at: datetime = T0, **overrides: object) -> DecisionRow:
    values: dict[str, object] = {
        "id": uuid7_at(created_at),  # as the service makes them: the id carries the time of created_at
        "created_at": created_at,
        "ruleset_sha256": SHA_A,
        "ruleset_version": "2026.11.1",
        "caller": "team-a",
        "request_id": "req-1",
        "family": "ml.g5",
        "instance_type": "ml.g5.xlarge",
        "scaling_method": "target-tracking",
        "instances": 2,
        "profile": '{"model":"llama"}',
        "recommendation": '{"family":"ml.g5"}',
    }
    values.update(overrides)
    return DecisionRow(**values)  # type: ignore[arg-type]


def newest_first(rows: list[DecisionRow]) -> list[ListedDecision]:
    """``rows`` as the list shows them (without their texts), newest first."""
    ordered = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    return [ListedDecision(**{f.name: getattr(r, f.name) for f in dataclasses.fields(ListedDecision)}) for r in ordered]


async def seed_rulesets(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        repo = AuditRepository(conn)
        await repo.save_ruleset(SHA_A, "2026.11.1", "first", {"rules/a.yaml": "a: 1\n"}, T0)
        await repo.save_ruleset(SHA_B, "2026.11.2", None, {"rules/b.yaml": "b: 2\n"}, T0 + timedelta(days=1))


async def add(engine: AsyncEngine, rows: list[DecisionRow]) -> None:
    async with engine.begin() as conn:
        await append_decisions(conn, rows)


async def test_decision_round_trips_byte_for_byte(engine: AsyncEngine) -> None:
    await seed_rulesets(engine)
    profile = '{ "b" : 1.50,\n  "a": "caf\\u00e9 — ünïcode 😀",\t"z": [1,2 ,3], "big": 12345678901234567890 }'
    recommendation = '{"family":"ml.g5","note":"naïve ✓","ratio":0.1000}'
    row = decision(
        created_at=datetime(2026, 11, 29, 14, 30, 1, 654321, tzinfo=timezone(timedelta(hours=2))),
        profile=profile,
        recommendation=recommendation,
        caller="ünïcode-caller",
        instances=None,
        family=None,
        instance_type=None,
        scaling_method=None,
    )
    await add(engine, [row])

    async with engine.connect() as conn:
        got = await AuditRepository(conn).get_decision(row.id)
    assert got == row
    assert got.profile.encode() == profile.encode()
    assert got.recommendation.encode() == recommendation.encode()
    assert got.created_at.tzinfo is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at == datetime(2026, 11, 29, 12, 30, 1, 654321, tzinfo=UTC)
    assert isinstance(got.id, UUID)


async def test_get_decision_missing_is_none(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await AuditRepository(conn).get_decision(uuid7()) is None


async def test_naive_datetime_is_rejected(engine: AsyncEngine) -> None:
    await seed_rulesets(engine)
    # Refused while hashing the row for the chain, before the database sees it (else by UTCDateTime on bind).
    with pytest.raises((ValueError, StatementError), match="naive datetime"):
        await add(engine, [decision(created_at=datetime(2026, 11, 29, 12, 0))])


async def test_a_decision_naming_an_unknown_ruleset_is_reported_by_verify(engine: AsyncEngine) -> None:
    """No foreign key since the decisions are partitioned (migration 0009): the writer stores what it decided with,
    and verification reports a decision whose ruleset is not stored."""
    await seed_rulesets(engine)
    await add(engine, [decision(T0), decision(T0 + timedelta(seconds=1), ruleset_sha256=SHA_B)])
    assert (await verify_chain(engine)).ok
    unknown = [decision(T0 + timedelta(seconds=2 + i), ruleset_sha256="c" * 64) for i in range(2)]
    await add(engine, [*unknown, decision(T0 + timedelta(seconds=5), ruleset_sha256="d" * 64)])
    report = await verify_chain(engine)
    assert report.broken is not None, str(report)
    assert (report.broken.chain, report.broken.seq, report.broken.decision_id) == (1, 3, unknown[0].id)
    assert str(report.broken) == (
        f"chain 1 seq 3 (decision {unknown[0].id}): it names ruleset {'c' * 64}, which is not stored"
    )
    assert report.decisions == 5  # the walk itself found nothing wrong


async def test_repository_never_commits(engine: AsyncEngine) -> None:
    await seed_rulesets(engine)
    async with engine.connect() as conn:
        await append_decisions(conn, [decision()])
        assert await decision_count(conn) == 1
        await conn.rollback()
    async with engine.connect() as conn:
        assert await decision_count(conn) == 0


async def test_append_decisions_is_one_insert_per_thousand_rows(engine: AsyncEngine) -> None:
    """SQLite: decisions in multi-row VALUES of up to 1000 rows each, their new documents in one executemany per
    append. Postgres: one statement of arrays, any count, storing the decisions and their documents both."""
    await seed_rulesets(engine)
    # Every profile different, every answer the same: documents are stored once per month by content.
    few = [decision(T0 - timedelta(seconds=i + 1), profile=f'{{"few":{i}}}') for i in range(50)]
    many = [decision(T0 + timedelta(seconds=i), profile=f'{{"many":{i}}}') for i in range(2500)]
    postgres = engine.dialect.name == "postgresql"
    per_many = 1 if postgres else 3
    async with recorded_statements(engine) as statements:
        await add(engine, few)
        assert (len(decision_inserts(statements)), len(document_inserts(statements))) == (1, 1)
        await add(engine, many)
        assert (len(decision_inserts(statements)), len(document_inserts(statements))) == (1 + per_many, 2)
        await add(engine, [])
        assert (len(decision_inserts(statements)), len(document_inserts(statements))) == (1 + per_many, 2)
    if postgres:  # the documents go in with the decisions, in the same statement
        assert decision_inserts(statements) == document_inserts(statements)
    async with engine.connect() as conn:
        repo = AuditRepository(conn)
        assert await decision_count(conn) == 2550
        assert await conn.scalar(text("SELECT count(*) FROM audit_documents")) == 50 + 2500 + 1
        assert await repo.list_decisions(limit=3000) == newest_first(few + many)
        for row in (few[0], few[-1], many[0], many[1234], many[-1]):
            assert await repo.get_decision(row.id) == row


async def test_keyset_pagination_returns_every_row_once(engine: AsyncEngine) -> None:
    await seed_rulesets(engine)
    rng = random.Random(7)
    # 25 rows over 6 distinct timestamps: many ties on created_at, broken by id.
    rows = [decision(T0 + timedelta(milliseconds=rng.randrange(6))) for _ in range(25)]
    rng.shuffle(rows)
    await add(engine, rows)

    for page_size in (1, 4, 7, 25, 30):
        pages: list[list[ListedDecision]] = []
        after: tuple[datetime, UUID] | None = None
        async with engine.connect() as conn:
            repo = AuditRepository(conn)
            while True:
                page = await repo.list_decisions(limit=page_size, after=after)
                if not page:
                    break
                assert len(page) <= page_size
                pages.append(page)
                after = (page[-1].created_at, page[-1].id)
        seen = [row for page in pages for row in page]
        assert seen == newest_first(rows), page_size
        assert len({row.id for row in seen}) == 25


async def test_keyset_pagination_with_filter(engine: AsyncEngine) -> None:
    await seed_rulesets(engine)
    rows = [decision(T0 + timedelta(seconds=i % 3), family=FAMILIES[i % 3]) for i in range(24)]
    await add(engine, rows)
    expected = newest_first([r for r in rows if r.family == "ml.c7i"])
    seen: list[ListedDecision] = []
    after: tuple[datetime, UUID] | None = None
    async with engine.connect() as conn:
        repo = AuditRepository(conn)
        while page := await repo.list_decisions(limit=3, after=after, family="ml.c7i"):
            seen += page
            after = (page[-1].created_at, page[-1].id)
    assert seen == expected


async def test_filters(engine: AsyncEngine) -> None:
    await seed_rulesets(engine)
    rows = [
        decision(
            T0 + timedelta(minutes=i),
            family=FAMILIES[i % 3],
            scaling_method=SCALING[i % 3],
            ruleset_sha256=SHA_A if i % 2 else SHA_B,
            ruleset_version="2026.11.1" if i % 2 else "2026.11.2",
        )
        for i in range(12)
    ]
    await add(engine, rows)

    async def ids(**filters: object) -> list[UUID]:
        async with engine.connect() as conn:
            found = await AuditRepository(conn).list_decisions(limit=100, **filters)  # type: ignore[arg-type]
        return [r.id for r in found]

    def expect(predicate: object) -> list[UUID]:
        return [r.id for r in newest_first(rows) if predicate(r)]  # type: ignore[operator]

    assert await ids() == expect(lambda r: True)
    assert await ids(family="ml.g5") == expect(lambda r: r.family == "ml.g5")
    assert await ids(scaling_method="step") == expect(lambda r: r.scaling_method == "step")
    assert await ids(ruleset_version="2026.11.2") == expect(lambda r: r.ruleset_version == "2026.11.2")
    since, until = T0 + timedelta(minutes=3), T0 + timedelta(minutes=7)
    assert await ids(since=since) == expect(lambda r: r.created_at >= since)
    assert await ids(until=until) == expect(lambda r: r.created_at < until)
    window = expect(lambda r: since <= r.created_at < until)
    assert len(window) == 4  # since inclusive (minute 3), until exclusive (minute 7)
    assert await ids(since=since, until=until) == window
    # A since/until in another zone is the same instant.
    assert await ids(since=since.astimezone(timezone(timedelta(hours=-5))), until=until) == window
    assert await ids(family="ml.c7i", ruleset_version="2026.11.1", since=since) == expect(
        lambda r: r.family == "ml.c7i" and r.ruleset_version == "2026.11.1" and r.created_at >= since
    )
    assert await ids(family="nope") == []
    async with engine.connect() as conn:
        first_five = await AuditRepository(conn).list_decisions(limit=5)
    assert [r.id for r in first_five] == expect(lambda r: True)[:5]


async def test_limit_must_be_positive(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(ValueError, match="limit"):
            await AuditRepository(conn).list_decisions(limit=0)


async def test_save_ruleset_is_idempotent(engine: AsyncEngine) -> None:
    files = {"rules/a.yaml": "a: 1\n", "rules/ü.yaml": "x: 'ünïcode'\n"}
    async with engine.begin() as conn:
        repo = AuditRepository(conn)
        await repo.save_ruleset(SHA_A, "1.0", "first", files, T0)
        await repo.save_ruleset(SHA_A, "1.0", "first", files, T0)
    async with engine.begin() as conn:  # a later transaction, different content: still ignored
        await AuditRepository(conn).save_ruleset(SHA_A, "other", "changed", {}, T0 + timedelta(days=1))
    async with engine.connect() as conn:
        repo = AuditRepository(conn)
        got = await repo.get_ruleset(SHA_A)
        assert got == RulesetRow(sha256=SHA_A, version="1.0", description="first", created_at=T0, files=files)
        assert len(await repo.list_rulesets()) == 1
        assert await repo.get_ruleset(SHA_B) is None


async def test_a_version_stored_twice_is_ambiguous_and_each_is_read_by_hash(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        repo = AuditRepository(conn)
        # Same label on two contents (stored before activation refused it); the newer one is saved first so
        # insertion order can't give the order of the hashes.
        await repo.save_ruleset(SHA_B, "1.0", "newer", {"b": "2"}, T0 + timedelta(hours=1))
        await repo.save_ruleset(SHA_A, "1.0", "older", {"a": "1"}, T0)
        await repo.save_ruleset("c" * 64, "2.0", None, {}, T0 + timedelta(hours=2))
    async with engine.connect() as conn:
        repo = AuditRepository(conn)
        with pytest.raises(AmbiguousRulesetVersion) as ambiguous:
            await repo.get_ruleset_by_version("1.0")
        assert ambiguous.value.sha256s == [SHA_A, SHA_B]
        assert SHA_A in str(ambiguous.value) and SHA_B in str(ambiguous.value)
        assert await repo.ruleset_hashes("1.0") == [SHA_A, SHA_B]
        assert [(await repo.get_ruleset(sha)).files for sha in (SHA_A, SHA_B)] == [{"a": "1"}, {"b": "2"}]  # type: ignore[union-attr]
        only = await repo.get_ruleset_by_version("2.0")
        assert only is not None and only.sha256 == "c" * 64
        assert await repo.get_ruleset_by_version("9.9") is None
        assert await repo.ruleset_hashes("9.9") == []
        listed = await repo.list_rulesets()
    assert [r.sha256 for r in listed] == ["c" * 64, SHA_B, SHA_A]
    assert all(type(r) is RulesetSummary for r in listed)
    assert listed[1] == RulesetSummary(SHA_B, "1.0", "newer", created_at=T0 + timedelta(hours=1))
    assert all(r.created_at.tzinfo is not None and r.created_at.utcoffset() == timedelta(0) for r in listed)


async def test_ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await AuditRepository(conn).ping()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE decisions SET caller = 'mallory'",
        "UPDATE decisions SET recommendation_sha256 = profile_sha256 WHERE id = :id",
        "DELETE FROM decisions",
        "DELETE FROM decisions WHERE id = :id",
        # The texts are documents: changing an answer means changing its document.
        "UPDATE audit_documents SET codec = 0, body = :body WHERE sha256 = :answer",
        "UPDATE audit_documents SET month = month + 1",
        "DELETE FROM audit_documents",
        "DELETE FROM audit_documents WHERE sha256 = :answer",
    ],
)
async def test_decisions_and_their_documents_are_append_only(engine: AsyncEngine, statement: str) -> None:
    await seed_rulesets(engine)
    row = decision()
    await add(engine, [row])
    key = row.id.hex if engine.dialect.name == "sqlite" else row.id
    params = {"id": key, "body": b'{"family":"ml.c7i"}', "answer": hashlib.sha256(row.recommendation.encode()).digest()}
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(
                text(statement), {name: value for name, value in params.items() if f":{name}" in statement}
            )
    async with engine.connect() as conn:
        assert await AuditRepository(conn).get_decision(row.id) == row
    assert (await verify_chain(engine)).ok


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE decisions",
        "TRUNCATE decisions CASCADE",
        "TRUNCATE audit_documents",
        "TRUNCATE audit_documents CASCADE",
        # A partition on its own: the one the row is in (the migration made months from the current one on) ...
        "TRUNCATE decisions_default",
        "TRUNCATE audit_documents_default",
        "DELETE FROM decisions_default",
        "UPDATE audit_documents_default SET codec = 0",
        # ... or a month's.
        f"TRUNCATE decisions_y{datetime.now(UTC):%Ym%m}",
        f"TRUNCATE audit_documents_y{datetime.now(UTC):%Ym%m}",
    ],
)
async def test_truncate_and_the_partitions_are_rejected_on_postgres(pg_engine: AsyncEngine, statement: str) -> None:
    await seed_rulesets(pg_engine)
    row = decision()
    await add(pg_engine, [row])
    with pytest.raises(DBAPIError, match="append-only"):
        async with pg_engine.begin() as conn:
            await conn.execute(text(statement))
    async with pg_engine.connect() as conn:
        assert await decision_count(conn) == 1
        assert await AuditRepository(conn).get_decision(row.id) == row


async def test_truncated_rulesets_leave_the_decisions_and_verify_reports_it(pg_engine: AsyncEngine) -> None:
    """Without the foreign key (migration 0009) a TRUNCATE of rulesets no longer reaches the decisions (it used to
    cascade into their append-only trigger): it goes through, and verification names the first decision whose
    ruleset is gone."""
    await seed_rulesets(pg_engine)
    row = decision()
    await add(pg_engine, [row])
    async with pg_engine.begin() as conn:
        await conn.execute(text("TRUNCATE rulesets CASCADE"))
    async with pg_engine.connect() as conn:
        assert await decision_count(conn) == 1
    report = await verify_chain(pg_engine)
    assert report.broken is not None and report.broken.decision_id == row.id, str(report)
    assert f"it names ruleset {SHA_A}, which is not stored" in str(report)


def test_decision_row_is_frozen() -> None:
    row = decision()
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.caller = "x"  # type: ignore[misc]
