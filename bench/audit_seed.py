"""What bench/audit_bench.py writes and how it measures the store: profiles, the row mix, UUIDv7 ids at a given
time, seeding through the real audit writer, and the size of every table and index.

Kept apart so that the benchmark itself (steps, table, result file) reads in one sitting. Run nothing here; see
bench/audit_bench.py and bench/README.md.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

# This script's directory is first on sys.path: bench/impact_bench.py.
from impact_bench import profile_for

from service import __version__
from service.contract import WorkloadProfile
from service.db.connection import create_engine
from service.db.repository import DecisionRow
from service.engine import CompiledRuleset, compile_ruleset, evaluate
from service.rulebook.loader import load_ruleset
from service.services.activation import Activator
from service.services.audit import AuditWriter
from service.services.registry import RulesetRegistry
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OLD_VERSION = "2026.11.1-bench"  # the ruleset version of the oldest rows: a rare ruleset_version filter value
COMMON_PROFILES = 300  # the pool repeated decisions are drawn from in the fill
DISTINCT_SHARE = 0.3  # of the fill: every profile new; the rest from the pool, Zipf-weighted (1/rank)
_encoder = msgspec.json.Encoder()


# --- profiles ---------------------------------------------------------------------------------------------------


def distinct_profile(i: int) -> dict[str, Any]:
    """impact_bench's profile_for(i) with i/10^7 added to peak_rps, so that no two texts are equal (i < 10^7)."""
    profile = profile_for(i)
    traffic = profile["traffic"]
    assert isinstance(traffic, dict)
    traffic["peak_rps"] = round(traffic["peak_rps"] + (i + 1) / 10_000_000, 7)
    return profile


def common_profile(k: int) -> dict[str, Any]:
    """The k-th profile of the pool: profile_for at indices no distinct profile uses (those all carry a fraction)."""
    return profile_for(5_000_000 + k)


def worked_example() -> dict[str, Any]:
    """The study guide's worked example (20 RPS per instance, 150 RPS peak), as the API documents it."""
    from service.api.openapi_docs import WORKED_EXAMPLE

    return dict(WORKED_EXAMPLE)


def uuid7_at(ms: int, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 (RFC 9562) whose 48-bit time is ``ms`` (ms since 1970) and whose other 74 bits are random.

    Built by hand: uuid_utils.uuid7 takes a time only in recent releases, and the ids must match created_at."""
    rand = rng.getrandbits(74)
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & (2**62 - 1))
    return uuid.UUID(int=value)


# --- rulesets ---------------------------------------------------------------------------------------------------


def old_rules_dir(tmp: Path) -> Path:
    """The shipped rules under another version label (same rules, so another sha256): the oldest rows' ruleset."""
    target = tmp / "old-rules"
    shutil.copytree(ROOT / "rules", target)
    manifest = target / "ruleset.yaml"
    text = manifest.read_text()
    current = load_ruleset(ROOT / "rules").version
    manifest.write_text(text.replace(f'version: "{current}"', f'version: "{OLD_VERSION}"', 1))
    return target


async def activate_rulesets(url: str, old_dir: Path) -> tuple[CompiledRuleset, CompiledRuleset]:
    """Store and activate the old ruleset, then the shipped one (which stays active for the server)."""
    engine = create_engine(Settings(database_url=url))
    try:
        activator = Activator(engine, RulesetRegistry(engine))
        compiled = []
        for path in (old_dir, ROOT / "rules"):
            loaded = load_ruleset(path)
            await activator.activate(loaded, by="bench")
            compiled.append(compile_ruleset(loaded))
        return compiled[0], compiled[1]
    finally:
        await engine.dispose()


# --- rows -------------------------------------------------------------------------------------------------------


@dataclass
class RowMaker:
    """Decision rows at evenly spaced times from ``start`` over ``span``: row k of ``total`` at start + span·k/total.

    The oldest ``old_rows`` rows are decided under ``old``, the rest under ``current``. Answers of repeated
    profiles are evaluated once per ruleset and kept; distinct ones are evaluated each time."""

    old: CompiledRuleset
    current: CompiledRuleset
    start: datetime
    span: timedelta
    total: int
    old_rows: int
    rng: random.Random = field(default_factory=lambda: random.Random(20261203))
    _answers: dict[tuple[str, bytes], tuple[Any, ...]] = field(default_factory=dict)

    def row(self, k: int, profile: dict[str, Any], *, keep_answer: bool) -> DecisionRow:
        created_at = self.start + self.span * (k / self.total)
        ruleset = self.old if k < self.old_rows else self.current
        body = _encoder.encode(profile)
        answer = self._answers.get((ruleset.sha256, body)) if keep_answer else None
        if answer is None:
            rec = evaluate(msgspec.json.decode(body, type=WorkloadProfile), ruleset)
            answer = (
                _encoder.encode(rec).decode(),
                rec.instance.family if rec.instance else None,  # None: a mode without instances (serverless)
                rec.instance.instance_type if rec.instance else None,
                rec.scaling.method if rec.scaling else None,
                rec.capacity.instances if rec.capacity else None,
            )
            if keep_answer:
                self._answers[(ruleset.sha256, body)] = answer
        ms = int(created_at.timestamp() * 1000)
        return DecisionRow(
            id=uuid7_at(ms, self.rng),
            created_at=created_at,
            ruleset_sha256=ruleset.sha256,
            ruleset_version=ruleset.version,
            caller="bench",
            request_id=f"bench-{k}",
            family=answer[1],
            instance_type=answer[2],
            scaling_method=answer[3],
            instances=answer[4],
            profile=body.decode(),
            recommendation=answer[0],
            engine_version=__version__,  # as the service records them
        )


def fill_profiles(n: int, first_distinct: int, rng: random.Random) -> Iterator[tuple[dict[str, Any], bool]]:
    """The fill's mix: DISTINCT_SHARE new profiles (indices from ``first_distinct`` on), the rest from the pool of
    COMMON_PROFILES with weight 1/rank. Yields (profile, repeated?)."""
    weights = [1 / (rank + 1) for rank in range(COMMON_PROFILES)]
    cumulative = [sum(weights[: i + 1]) for i in range(COMMON_PROFILES)]
    distinct = first_distinct
    for _ in range(n):
        if rng.random() < DISTINCT_SHARE:
            distinct += 1
            yield distinct_profile(distinct), False
        else:
            yield common_profile(rng.choices(range(COMMON_PROFILES), cum_weights=cumulative)[0]), True


# --- writing ----------------------------------------------------------------------------------------------------


class Progress:
    """A rich progress bar on a terminal (stderr), a line every 100,000 rows on a terminal without rich, and
    nothing while running otherwise (the caller prints one summary line)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._bar: Any = None
        self._task: Any = None
        self.tty = sys.stderr.isatty()
        if self.tty:
            try:
                from rich.progress import Progress as RichProgress
            except ImportError:
                return
            self._bar = RichProgress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int) -> None:
        before, self.done = self.done, self.done + n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self.tty and before // 100_000 != self.done // 100_000:
            print(f"{self.label}: {self.done:,} / {self.total:,}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


async def write_rows(url: str, rows: Iterator[DecisionRow], n: int, label: str, chunk: int = 5000) -> float:
    """Write ``n`` rows through the audit writer (batches of up to 1,000), two chunks in flight; seconds taken."""
    # A batch of 1,000 answers is about 18 MB of SQL: on a busy 2-core host one statement can outlast the
    # service's 10 s statement timeout, and a batch that committed just as the client gave up is then redone and
    # fails on its own ids. The bench is a bulk load, so it allows a statement two minutes.
    engine = create_engine(Settings(database_url=url, db_command_timeout_s=120))
    writer = AuditWriter(engine, max_rows=1000, max_wait_ms=5)
    await writer.start()
    progress = Progress(label, n)
    started = time.perf_counter()
    in_flight: asyncio.Future[Any] | None = None
    try:
        while progress.done < n:
            batch = [next(rows) for _ in range(min(chunk, n - progress.done))]
            pending = asyncio.gather(*(writer.write(row) for row in batch))
            if in_flight is not None:
                await in_flight
            in_flight = pending
            progress.advance(len(batch))
            await asyncio.sleep(0)  # let the writer send what is queued before the next chunk is evaluated
        if in_flight is not None:
            await in_flight
    finally:
        progress.close()
        await writer.stop()
        await engine.dispose()
    return time.perf_counter() - started


# --- sizes ------------------------------------------------------------------------------------------------------

_SIZES = """
SELECT c.relname, pg_table_size(c.oid) - coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
"""
_INDEX_SIZES = """
SELECT t.relname, i.relname, pg_relation_size(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND t.relkind = 'r'
"""


async def sizes(dsn: str) -> dict[str, int]:
    """Bytes of every ordinary table of the public schema (partitions included, their parents hold nothing):
    ``table/heap`` (main fork, free-space and visibility maps), ``table/toast`` (with its index) and
    ``table/index`` per index. Their sum is the sum of pg_total_relation_size over those tables."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        out: dict[str, int] = {}
        for table, heap, toast in await conn.fetch(_SIZES):
            out[f"{table}/heap"] = heap
            out[f"{table}/toast"] = toast
        for table, index, size in await conn.fetch(_INDEX_SIZES):
            out[f"{table}/{index}"] = size
        return out
    finally:
        await conn.close()


def size_delta(before: dict[str, int], after: dict[str, int], decisions: int) -> dict[str, Any]:
    """Bytes per decision in total and per relation (those that grew or shrank), largest first."""
    names = sorted(set(before) | set(after))
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in names}
    moved = {name: d for name, d in sorted(delta.items(), key=lambda kv: -abs(kv[1])) if d}
    return {
        "decisions": decisions,
        "bytes_total": sum(delta.values()),
        "bytes_per_decision": round(sum(delta.values()) / decisions, 1),
        "by_relation": {name: {"bytes": d, "per_decision": round(d / decisions, 1)} for name, d in moved.items()},
    }


@dataclass
class TextStats:
    """What went into the store: how many different profile and recommendation texts, and their raw bytes."""

    rows: int = 0
    raw_bytes: int = 0
    profiles: set[int] = field(default_factory=set)
    recommendations: set[int] = field(default_factory=set)

    def observe(self, rows: Iterator[DecisionRow]) -> Iterator[DecisionRow]:
        for row in rows:
            self.rows += 1
            self.raw_bytes += len(row.profile.encode()) + len(row.recommendation.encode())
            self.profiles.add(hash(row.profile))
            self.recommendations.add(hash(row.recommendation))
            yield row

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "distinct_profiles": len(self.profiles),
            "distinct_recommendations": len(self.recommendations),
            "raw_text_bytes_per_decision": round(self.raw_bytes / self.rows, 1) if self.rows else None,
        }


def uptime_load() -> list[float]:
    """The load averages `uptime` prints (1, 5, 15 min)."""
    return [round(x, 2) for x in os.getloadavg()]
