"""Archiving whole months: export, verify, drop, 410 for their decisions, verify with and without the files."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from auditutil import MakeClient, decision, uuid7_at
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import append_decisions, decision_count

from service.db import DecisionRow
from service.services.audit import verify_chain
from service.services.audit.archive import ArchiveError, archive_months, month_of_decision_id, read_archive

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SEPTEMBER, OCTOBER, NOVEMBER = (datetime(2026, m, 15, 8, 0, tzinfo=UTC) for m in (9, 10, 11))


def made_at(when: datetime, n: int) -> DecisionRow:
    created = when + timedelta(seconds=n)
    return decision(n, id=uuid7_at(created), created_at=created)


async def three_months(engine: AsyncEngine) -> list[DecisionRow]:
    """Five decisions each in September, October and November, appended in time order."""
    rows = [made_at(month, n) for month in (SEPTEMBER, OCTOBER, NOVEMBER) for n in range(5)]
    async with engine.begin() as conn:
        await append_decisions(conn, rows)
    return rows


def archive_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl.gz"))


async def archive(engine: AsyncEngine, directory: Path, before: int) -> list[int]:
    done = await archive_months(engine, before=before, directory=directory, clock=lambda: NOW)
    return [month.month for month in done]


async def test_archive_exports_verifies_and_drops_whole_months(engine: AsyncEngine, tmp_path: Path) -> None:
    rows = await three_months(engine)
    assert await archive(engine, tmp_path, 202611) == [202609, 202610]

    async with engine.connect() as conn:
        assert await decision_count(conn) == 5
        archived = (await conn.execute(text("SELECT month, file, decisions FROM audit_archives ORDER BY month"))).all()
    assert [tuple(row) for row in archived] == [
        (202609, "decisions-2026-09.jsonl.gz", 5),
        (202610, "decisions-2026-10.jsonl.gz", 5),
    ]
    exported = list(read_archive(tmp_path / "decisions-2026-10.jsonl.gz"))
    assert [link.decision for link in exported] == rows[5:10]  # byte-exact texts, every field
    assert [link.seq for link in exported] == [6, 7, 8, 9, 10]
    manifest = json.loads((tmp_path / "decisions-2026-10.manifest.json").read_text())
    assert manifest["decisions"] == 5
    assert manifest["chains"]["1"][0] | {"first_prev_hash": "", "last_row_hash": ""} == {
        "first_seq": 6,
        "last_seq": 10,
        "decisions": 5,
        "first_prev_hash": "",
        "last_row_hash": "",
    }

    without_files = await verify_chain(engine)
    assert without_files.ok, without_files.broken
    assert without_files.decisions == 5
    with_files = await verify_chain(engine, archives=archive_files(tmp_path))
    assert with_files.ok, with_files.broken
    assert with_files.decisions == 15


async def test_archiving_again_finds_nothing_and_the_current_month_is_refused(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await three_months(engine)
    assert await archive(engine, tmp_path, 202610) == [202609]
    assert await archive(engine, tmp_path, 202610) == []
    with pytest.raises(ArchiveError, match="still take decisions"):
        await archive(engine, tmp_path, 202701)


async def test_the_chain_goes_on_after_archiving_and_still_verifies(engine: AsyncEngine, tmp_path: Path) -> None:
    await three_months(engine)
    await archive(engine, tmp_path, 202611)
    async with engine.begin() as conn:
        await append_decisions(conn, [made_at(NOW, n) for n in range(3)])
    report = await verify_chain(engine, archives=archive_files(tmp_path))
    assert report.ok, report.broken
    assert (report.decisions, report.head.seq) == (18, 18)


async def test_a_changed_archive_file_is_reported(engine: AsyncEngine, tmp_path: Path) -> None:
    await three_months(engine)
    await archive(engine, tmp_path, 202611)
    path = tmp_path / "decisions-2026-10.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"caller":"team-a"', b'"caller":"mallory"')
    path.write_bytes(gzip.compress(b"".join(lines)))
    report = await verify_chain(engine, archives=archive_files(tmp_path))
    assert not report.ok
    assert "decisions-2026-10.jsonl.gz: its SHA-256 differs from the one recorded" in str(report.broken)


async def test_a_missing_archive_file_is_reported(engine: AsyncEngine, tmp_path: Path) -> None:
    await three_months(engine)
    await archive(engine, tmp_path, 202611)
    report = await verify_chain(engine, archives=[tmp_path / "decisions-2026-10.jsonl.gz"])
    assert "archive decisions-2026-09.jsonl.gz (month 202609) was not given" in str(report.broken)


async def test_rows_of_a_chain_that_cross_the_month_boundary_out_of_order_verify(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """created_at is taken before a row is queued, so at midnight of a month's last day a row of the new month can
    be chained before one of the old: the archived runs of a chain are then not one range."""
    last_october = datetime(2026, 10, 31, 23, 59, 59, 999000, tzinfo=UTC)
    first_november = datetime(2026, 11, 1, 0, 0, 0, 1000, tzinfo=UTC)
    rows = [made_at(last_october, 0), made_at(first_november, 0), made_at(last_october, 0), made_at(NOVEMBER, 1)]
    async with engine.begin() as conn:
        await append_decisions(conn, rows)
    assert await archive(engine, tmp_path, 202611) == [202610]
    manifest = json.loads((tmp_path / "decisions-2026-10.manifest.json").read_text())
    assert [(run["first_seq"], run["last_seq"]) for run in manifest["chains"]["1"]] == [(1, 1), (3, 3)]
    without_files = await verify_chain(engine)
    assert without_files.ok, without_files.broken
    with_files = await verify_chain(engine, archives=archive_files(tmp_path))
    assert with_files.ok, with_files.broken
    assert with_files.decisions == 4


async def test_a_live_row_rewritten_after_an_archived_run_is_reported(engine: AsyncEngine, tmp_path: Path) -> None:
    """Without the files, the first live row must still link to the last archived row's hash (the manifest's)."""
    await three_months(engine)
    await archive(engine, tmp_path, 202611)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE decisions DISABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER decisions_no_update"))
        await conn.execute(text("UPDATE decisions SET prev_hash = :h WHERE seq = 11"), {"h": bytes(32)})
    report = await verify_chain(engine)
    assert not report.ok
    assert report.broken is not None and report.broken.seq == 11


def test_the_month_of_a_uuid7_is_its_timestamps() -> None:
    assert month_of_decision_id(uuid7_at(datetime(2026, 10, 31, 23, 59, tzinfo=UTC))) == 202610
    assert month_of_decision_id(uuid.uuid4()) is None


async def test_an_archived_decision_answers_410_naming_its_archive(
    engine: AsyncEngine, make_client: MakeClient, tmp_path: Path
) -> None:
    rows = await three_months(engine)
    await archive(engine, tmp_path, 202611)
    async with make_client() as client:
        gone = await client.get(f"/v1/decisions/{rows[7].id}")
        live = await client.get(f"/v1/decisions/{rows[12].id}")
        unknown = await client.get(f"/v1/decisions/{uuid7_at(datetime(2026, 6, 1, tzinfo=UTC))}")
    assert gone.status_code == 410, gone.text
    assert gone.json()["code"] == "decision-archived"
    assert "decisions-2026-10.jsonl.gz" in gone.json()["detail"]
    assert live.status_code == 200
    assert live.json()["recommendation"] == json.loads(rows[12].recommendation)
    assert unknown.status_code == 404
