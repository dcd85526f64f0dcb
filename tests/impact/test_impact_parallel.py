"""`advisor rules impact` on several processes: the history split into ranges gives the report of one pass."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from candidates import write_candidate
from click.testing import CliRunner
from storedrows import append_decisions
from uuid_utils.compat import uuid7

from service import __version__
from service.cli import main
from service.contract import WorkloadProfile
from service.db.connection import create_engine, write_transaction
from service.db.repository import DecisionRow
from service.engine import CompiledRuleset, compile_ruleset, evaluate
from service.rulebook.loader import load_ruleset
from service.services.activation import Activator
from service.services.impact import ImpactReport
from service.services.impact_parallel import plan_ranges, run_impact
from service.services.registry import RulesetRegistry
from service.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 1, tzinfo=UTC)


def _profile(i: int) -> bytes:
    """Classic ML on CPU at 40 to 190 RPS among other workloads: the candidate moves those below 100 RPS to M."""
    kinds = ["classic_ml", "classic_ml", "deep_learning", "vision"]
    body = {
        "workload": {"bound": "cpu", "model_kind": kinds[i % 4], "model_memory_gib": 1 + i % 3},
        "traffic": {"peak_rps": 40 + (i * 37) % 160, "per_instance_rps": 5 + i % 7, "burstiness": "steady"},
        "sla": {"p99_latency_ms": 200 + i % 5, "availability": [0.99, 0.999][i % 2]},
    }
    return msgspec.json.encode(body)


def _row(i: int, ruleset: CompiledRuleset, body: bytes, created_at: datetime) -> DecisionRow:
    rec = evaluate(msgspec.json.decode(body, type=WorkloadProfile), ruleset)
    return DecisionRow(
        id=uuid7(),
        created_at=created_at,
        ruleset_sha256=ruleset.sha256,
        ruleset_version=ruleset.version,
        caller="test",
        request_id=f"test-{i}",
        family=rec.instance.family,
        instance_type=rec.instance.instance_type,
        scaling_method=rec.scaling.method,
        instances=rec.capacity.instances,
        profile=body.decode(),
        recommendation=msgspec.json.encode(rec).decode(),
        engine_version=__version__,
    )


async def _history(database_url: str, count: int) -> None:
    """``count`` decisions: repeated profiles, pairs stored at the same instant (ordered by id), every tenth
    recorded by another engine that gave three more instances, one profile this release cannot decode."""
    engine = create_engine(Settings(database_url=database_url))
    try:
        loaded = load_ruleset(ROOT / "rules")
        await Activator(engine, RulesetRegistry(engine)).activate(loaded, by="test")
        ruleset = compile_ruleset(loaded)
        rows = []
        for i in range(count):
            at = START + timedelta(seconds=i // 2)
            row = _row(i, ruleset, _profile(i % 23), at)
            if i % 10 == 3:
                row = _replace(row, engine_version="0.1.0", instances=(row.instances or 0) + 3)
            if i == count // 2:
                row = _replace(row, profile='{"workload": 1}')
            rows.append(row)
        async with write_transaction(engine) as conn:
            await append_decisions(conn, rows)
    finally:
        await engine.dispose()


def _replace(row: DecisionRow, **changes: object) -> DecisionRow:
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


def _encoded(report: ImpactReport) -> bytes:
    return msgspec.json.encode(report)


async def test_ranges_cover_the_history_in_order(database_url: str) -> None:
    await _history(database_url, 50)
    planned = await plan_ranges(database_url, since=None, limit=47, ranges=6)
    assert [r.rows for r in planned] == [7, 8, 8, 8, 8, 8]
    whole = await plan_ranges(database_url, since=None, limit=None, ranges=1)
    assert [r.rows for r in whole] == [50]
    assert planned[0].after is None
    assert all(later.after == earlier.through for earlier, later in itertools.pairwise(planned))
    assert await plan_ranges(database_url, since=START + timedelta(days=1), limit=None, ranges=4) == []


@pytest.mark.parametrize(("limit", "since"), [(None, None), (41, None), (None, START + timedelta(seconds=5))])
async def test_parallel_report_equals_the_serial_one(
    database_url: str, tmp_path: Path, limit: int | None, since: datetime | None
) -> None:
    """Three processes over seven ranges give the one-pass report byte for byte: counts, cost sums, the order of
    the samples and of tied transitions, the engine's share. Small samples, so that later ranges' are cut."""
    await _history(database_url, 60)
    loaded = load_ruleset(write_candidate(tmp_path / "candidate", version="2027.1.0", classic_to_m_below_100=True))
    candidate = compile_ruleset(loaded)
    replay = functools.partial(run_impact, database_url, candidate, loaded.files, since=since, limit=limit)
    serial = await asyncio.to_thread(replay, jobs=1, sample_size=3)
    parallel = await asyncio.to_thread(replay, jobs=3, ranges=7, sample_size=3)
    assert serial.changed and serial.changed_by_engine and serial.undecodable == 1
    assert serial.other_engine and len(serial.sample) == 3
    assert serial.decisions == (limit or (60 - 10 if since else 60))
    assert _encoded(parallel) == _encoded(serial)


async def test_cli_jobs_prints_the_report_on_stdout_and_one_summary_line_on_stderr(
    database_url: str, tmp_path: Path
) -> None:
    await _history(database_url, 30)
    candidate = write_candidate(tmp_path / "candidate", version="2027.1.0", classic_to_m_below_100=True)
    loaded = load_ruleset(candidate)
    expected = await asyncio.to_thread(run_impact, database_url, compile_ruleset(loaded), loaded.files)
    get_settings.cache_clear()
    try:
        runner = CliRunner(env={"ADVISOR_DATABASE_URL": database_url})
        result = await asyncio.to_thread(
            runner.invoke, main, ["rules", "impact", "--candidate", str(candidate), "--format", "json", "--jobs", "2"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(msgspec.json.encode(expected))
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("impact: 30 decisions in ") and lines[0].endswith("/s)")
    assert uuid.UUID(json.loads(result.stdout)["sample"][0]["decision_id"])
