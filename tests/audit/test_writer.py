"""AuditWriter: group commit on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import httpx
import pytest
from auditutil import CommitCounter, MakeWriter, app_settings, count_decisions, decision, run_lifespan
from dbutil import decision_inserts, recorded_statements
from profiles import WORKED_EXAMPLE
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import decision_count

from service.app import create_app
from service.db import AuditRepository, DecisionRow, create_engine
from service.services.audit import AuditUnavailable, AuditWriteFailed, AuditWriter
from service.settings import Settings


async def test_concurrent_writes_share_few_transactions_and_all_land(
    engine: AsyncEngine, make_writer: MakeWriter
) -> None:
    writer = make_writer(max_rows=256, max_wait_ms=20)
    await writer.start()
    rows = [decision(i) for i in range(200)]
    async with CommitCounter(engine) as counter:
        answered = await asyncio.gather(*(writer.write(row) for row in rows))
    assert answered == rows  # each write answers with its own row
    assert counter.commits <= 5, counter.commits  # typically 1: one transaction for all 200
    assert writer.stats.batches == counter.commits
    assert writer.stats.rows == 200
    async with engine.connect() as conn:
        repo = AuditRepository(conn)
        assert await decision_count(conn) == 200
        for row in rows[::37]:
            assert await repo.get_decision(row.id) == row


async def test_batches_never_exceed_max_rows(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(max_rows=16, max_wait_ms=50)
    await writer.start()
    async with CommitCounter(engine) as counter:
        await asyncio.gather(*(writer.write(decision(i)) for i in range(100)))
    assert max(writer.stats.batch_sizes) == 16
    assert sum(size * n for size, n in writer.stats.batch_sizes.items()) == 100
    assert counter.commits == writer.stats.batches >= math.ceil(100 / 16)
    assert await count_decisions(engine) == 100


async def test_without_waiting_rows_still_group_behind_a_commit_in_flight(
    engine: AsyncEngine, make_writer: MakeWriter
) -> None:
    writer = make_writer(max_rows=256, max_wait_ms=0)
    await writer.start()
    async with CommitCounter(engine) as counter:
        await asyncio.gather(*(writer.write(decision(i)) for i in range(200)))
    assert counter.commits < 20, counter.commits
    assert await count_decisions(engine) == 200


async def test_a_full_batch_does_not_wait(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(max_rows=8, max_wait_ms=1000)
    await writer.start()
    started = time.monotonic()
    await asyncio.gather(*(writer.write(decision(i)) for i in range(8)))
    assert time.monotonic() - started < 0.8


async def test_a_lone_write_waits_at_most_max_wait(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(max_rows=256, max_wait_ms=150)
    await writer.start()
    started = time.monotonic()
    await writer.write(decision())
    assert 0.14 <= time.monotonic() - started < 2


async def test_write_returns_only_once_its_row_is_committed(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(max_rows=32, max_wait_ms=5)
    await writer.start()

    async def write_then_look(row: DecisionRow) -> None:
        await writer.write(row)
        async with engine.connect() as conn:  # another connection: sees only committed rows
            assert await AuditRepository(conn).get_decision(row.id) == row

    await asyncio.gather(*(write_then_look(decision(i)) for i in range(100)))


async def test_a_failed_commit_fails_every_waiter_of_its_batch_and_stores_nothing(
    engine: AsyncEngine, make_writer: MakeWriter
) -> None:
    writer = make_writer(max_rows=100, max_wait_ms=300)
    await writer.start()
    rows = [decision(i) for i in range(10)]
    rows.append(decision(0, id=rows[0].id))  # the same (created_at, id) twice: the primary key refuses the batch
    async with CommitCounter(engine) as counter:
        results = await asyncio.gather(*(writer.write(row) for row in rows), return_exceptions=True)
    assert counter.commits == 0
    assert all(type(r) is AuditWriteFailed for r in results), results
    assert len({id(r) for r in results}) == len(rows)  # each waiter its own exception, caused by the same error
    assert len({id(r.__cause__) for r in results if isinstance(r, BaseException)}) == 1
    assert await count_decisions(engine) == 0
    async with engine.connect() as conn:
        assert (await AuditRepository(conn).get_chain_head()).seq == 0  # type: ignore[union-attr]
    assert writer.stats.failed_batches == 1

    # The writer goes on: the next batch commits, starting the chain at seq 1.
    row = decision(1000)
    assert await writer.write(row) == row
    async with engine.connect() as conn:
        assert (await AuditRepository(conn).get_chain_head()).seq == 1  # type: ignore[union-attr]


async def test_a_failure_after_the_insert_rolls_the_whole_batch_back(
    engine: AsyncEngine, make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(self: AuditRepository, records: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(AuditRepository, "add_idempotency_keys", fail)  # runs after the decisions went in
    writer = make_writer(max_rows=100, max_wait_ms=100)
    await writer.start()
    results = await asyncio.gather(*(writer.write(decision(i)) for i in range(20)), return_exceptions=True)
    assert all(isinstance(r, AuditWriteFailed) and not isinstance(r, AuditUnavailable) for r in results)
    assert await count_decisions(engine) == 0


async def test_stop_commits_queued_rows_before_returning(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, max_rows=1000, max_wait_ms=1000)
    await writer.start()
    tasks = [asyncio.create_task(writer.write(decision(i))) for i in range(25)]
    await asyncio.sleep(0.1)
    assert not any(t.done() for t in tasks)  # still waiting for more rows to join
    assert await count_decisions(engine) == 0
    await writer.stop()
    assert all(t.done() and t.exception() is None for t in tasks)
    assert await count_decisions(engine) == 25
    with pytest.raises(AuditUnavailable, match="shutting down"):
        await writer.write(decision(99))


async def test_a_request_cancelled_before_its_batch_is_not_stored(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, max_rows=1000, max_wait_ms=200)
    await writer.start()
    kept = asyncio.create_task(writer.write(decision(1)))
    dropped = asyncio.create_task(writer.write(decision(2)))
    await asyncio.sleep(0.01)
    dropped.cancel()
    await writer.stop()
    assert kept.done() and dropped.cancelled()
    assert await count_decisions(engine) == 1


async def test_a_writer_never_started_starts_itself(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine)
    row = decision()
    assert await writer.write(row) == row
    await writer.stop()
    assert await count_decisions(engine) == 1


async def test_an_unreachable_database_is_audit_unavailable() -> None:
    engine = create_engine(
        Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:9/none", db_connect_timeout_s=1)
    )
    writer = AuditWriter(engine, max_wait_ms=0, retry_after_s=7)
    try:
        results = await asyncio.gather(*(writer.write(decision(i)) for i in range(3)), return_exceptions=True)
    finally:
        await writer.stop()
        await engine.dispose()
    assert all(isinstance(r, AuditUnavailable) and r.retry_after_s == 7 for r in results), results


async def test_multi_row_inserts(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    """One batch of 256 rows is one INSERT statement (not 256), whichever way the dialect sends it: through
    SQLAlchemy (SQLite) or on asyncpg directly (Postgres)."""
    async with recorded_statements(engine) as statements:
        writer = make_writer(max_rows=256, max_wait_ms=200)
        await writer.start()
        await asyncio.gather(*(writer.write(decision(i)) for i in range(256)))
        await writer.stop()
    assert writer.stats.batches == 1
    assert len(decision_inserts(statements)) == 1, statements
    assert await count_decisions(engine) == 256


def test_settings_configure_the_writer() -> None:
    settings = Settings(audit_batch_max_rows=17, audit_batch_max_wait_ms=0, db_retry_after_s=5)
    writer = AuditWriter.from_settings(create_engine(Settings(database_url="sqlite+aiosqlite:///:memory:")), settings)
    assert (writer.max_rows, writer.max_wait_s, writer.retry_after_s) == (17, 0, 5)
    assert Settings().audit_batch_max_rows == 256 and Settings().audit_batch_max_wait_ms == 0


async def test_an_outage_fails_the_rows_queued_behind_it_at_once(
    engine: AsyncEngine, make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """While a batch waits for an unreachable database, later rows don't queue for their own wait: they get the
    same 503 as soon as that batch fails; rows arriving after that are tried afresh. The log counts the requests
    answered, not those cancelled meanwhile."""
    caplog.set_level(logging.WARNING, "service.audit")
    attempts: list[int] = []

    async def hang_then_fail(self: AuditWriter, batch: list[object]) -> object:
        attempts.append(len(batch))
        await asyncio.sleep(0.3)  # like a connect timeout
        raise AuditUnavailable("the audit database is unavailable (TimeoutError)", retry_after_s=3)

    monkeypatch.setattr(AuditWriter, "_commit_once", hang_then_fail)
    writer = make_writer(max_rows=4, max_wait_ms=0)
    started = time.monotonic()
    first = [asyncio.create_task(writer.write(decision(i))) for i in range(4)]
    await asyncio.sleep(0.05)
    behind = [asyncio.create_task(writer.write(decision(i))) for i in range(10, 30)]
    await asyncio.sleep(0.05)
    gone = [first.pop(), behind.pop()]  # their clients went away while the batch hung
    for task in gone:
        task.cancel()
    results = await asyncio.gather(*first, *behind, return_exceptions=True)
    assert all(isinstance(r, AuditUnavailable) and r.retry_after_s == 3 for r in results), results
    assert all(task.cancelled() for task in gone)
    assert attempts == [4]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "service.audit"]
    assert "(22 decision(s) answered 503)" in line, line  # 3 of the batch, 19 queued
    assert time.monotonic() - started < 1  # one wait, not one per batch of 4
    monkeypatch.undo()
    assert await writer.write(row := decision(99)) == row  # the next arrival is tried again


async def _write_failing(
    make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch, commit_once: Any, count: int, raises: type[Exception]
) -> AuditWriter:
    """A writer committing one row a batch through ``commit_once``: ``count`` writes, each raising ``raises``."""
    monkeypatch.setattr(AuditWriter, "_commit_once", commit_once)
    writer = make_writer(max_rows=1, max_wait_ms=0)
    for i in range(count):
        with pytest.raises(raises):
            await writer.write(decision(i))
    return writer


async def test_an_outage_logs_one_traceback_and_its_end_not_a_traceback_per_batch(
    engine: AsyncEngine, make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = AuditWriter._commit_once
    reachable = False

    async def unreachable_until_told(self: AuditWriter, batch: list[object]) -> object:
        if not reachable:
            raise AuditUnavailable("the audit database is unavailable (ConnectionRefusedError)", retry_after_s=2)
        return await real(self, batch)  # type: ignore[arg-type]

    caplog.set_level(logging.WARNING, "service.audit")
    writer = await _write_failing(make_writer, monkeypatch, unreachable_until_told, 20, AuditUnavailable)
    reachable = True
    assert await writer.write(row := decision(99)) == row  # too soon after the failures to call it over
    writer.outage.clock = lambda: time.monotonic() + 60  # a minute later
    assert await writer.write(row := decision(100)) == row

    records = [r for r in caplog.records if r.name == "service.audit"]
    assert [r.exc_info is not None for r in records] == [True, False], [r.getMessage() for r in records]
    started, ended = (r.getMessage() for r in records)
    assert started.startswith(
        "audit writer: the audit database is unavailable (ConnectionRefusedError) (1 decision(s) answered 503)"
    )
    assert ended.startswith("audit writer: working again, after failing for ")
    assert ended.endswith(" (20 decision(s) answered 503 in all)")
    assert writer.stats.failed_batches == 20


async def test_a_failure_other_than_an_outage_is_logged_every_time_with_its_traceback(
    engine: AsyncEngine, make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: AuditWriter, batch: list[object]) -> object:
        raise RuntimeError("a bug")

    caplog.set_level(logging.WARNING, "service.audit")
    await _write_failing(make_writer, monkeypatch, broken, 3, AuditWriteFailed)
    records = [r for r in caplog.records if r.name == "service.audit"]
    assert [(r.getMessage(), r.exc_info is not None) for r in records] == [
        ("audit batch of 1 decision(s) failed: a bug", True)
    ] * 3


async def test_if_the_flusher_dies_no_request_waits_forever(
    engine: AsyncEngine, make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never(self: AuditWriter, batch: list[object]) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(AuditWriter, "_commit", never)
    writer = make_writer(max_rows=2, max_wait_ms=0)
    tasks = [asyncio.create_task(writer.write(decision(i))) for i in range(5)]
    await asyncio.sleep(0.05)
    assert writer._flusher is not None
    writer._flusher.cancel()  # e.g. the event loop tearing down
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(type(r) is AuditWriteFailed for r in results), results
    monkeypatch.undo()
    assert await writer.write(row := decision(9)) == row  # a new flusher takes over


async def test_app_shutdown_commits_the_decisions_in_flight(database_url: str) -> None:
    """The lifespan stops the writer before disposing of the engine: queued decisions are committed and answered."""
    app = create_app(app_settings(database_url, audit_batch_max_wait_ms=1000))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        lifespan = run_lifespan(app)
        await lifespan.__aenter__()
        posts = [asyncio.create_task(client.post("/v1/recommendations", json=WORKED_EXAMPLE)) for _ in range(10)]
        await asyncio.sleep(0.2)
        assert not any(p.done() for p in posts)  # waiting for more decisions to share their transaction
        await lifespan.__aexit__(None, None, None)  # shutdown, well before the batch's wait is up
        responses = await asyncio.gather(*posts)
    assert [r.status_code for r in responses] == [201] * 10
    engine = create_engine(Settings(database_url=database_url))
    try:
        assert await count_decisions(engine) == 10
    finally:
        await engine.dispose()
