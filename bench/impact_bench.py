"""Impact-analysis benchmark: replay a large audit history under a candidate ruleset.

Run: .venv/bin/python bench/impact_bench.py [--decisions 100000] [--jobs 1,2] [--keep-db | --reuse-db URL]
    [--admin-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Creates a fresh Postgres database, seeds it with N audited decisions through the real audit writer
(group commit, hash chain), then runs `advisor rules impact --jobs J` in a child process against a candidate
ruleset for each J of --jobs and reports decisions re-evaluated per second and the peak memory of the child's
whole process tree (its workers included). Runs each twice (N/10 and N decisions) to show memory does not grow
with history. Drops the database at the end, unless --keep-db (it prints the URL to pass to --reuse-db next time:
seeding 1,000,000 decisions takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec

from service import __version__
from service.contract import WorkloadProfile
from service.db.connection import create_engine
from service.db.migrate import upgrade
from service.db.repository import DecisionRow
from service.engine import CompiledRuleset, compile_ruleset, evaluate
from service.progress import progress
from service.rulebook.loader import load_ruleset
from service.services.activation import Activator
from service.services.audit import AuditWriter
from service.services.registry import RulesetRegistry
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
_encoder = msgspec.json.Encoder()


def profile_for(i: int) -> dict[str, object]:
    bounds = ["cpu", "memory", "gpu"]
    kinds = ["classic_ml", "deep_learning", "vision", "llm", "graph"]
    return {
        "workload": {"bound": bounds[i % 3], "model_kind": kinds[(i // 3) % 5], "model_memory_gib": 1 + i % 9},
        "traffic": {
            "peak_rps": 10 + (i * 7) % 490,
            "per_instance_rps": 5 + i % 17,
            "burstiness": ["steady", "bursty", "periodic"][(i // 15) % 3],
        },
        "sla": {"p99_latency_ms": 100 + i % 400, "availability": [0.99, 0.999, 0.9999][(i // 45) % 3]},
        "priority": ["balanced", "cost", "latency"][(i // 135) % 3],
    }


async def seed(url: str, n: int, profiles: int | None = None) -> float:
    """Store ``n`` decisions; every profile distinct, or ``profiles`` distinct ones in turn."""
    settings = Settings(database_url=url)
    engine = create_engine(settings)
    loaded = load_ruleset(ROOT / "rules")
    await Activator(engine, RulesetRegistry(engine)).activate(loaded, by="bench")
    ruleset = compile_ruleset(loaded)
    writer = AuditWriter(engine, max_rows=1000, max_wait_ms=5)
    await writer.start()
    started = time.perf_counter()
    try:
        with progress("seed", total=n, unit="decisions") as bar:
            chunk = 2000
            for start in range(0, n, chunk):
                rows = [_decision_row(i, ruleset, profiles) for i in range(start, min(n, start + chunk))]
                await asyncio.gather(*(writer.write(row) for row in rows))
                bar.advance(len(rows))
    finally:
        await writer.stop()
        await engine.dispose()
    return time.perf_counter() - started


def _decision_row(i: int, ruleset: CompiledRuleset, profiles: int | None) -> DecisionRow:
    body = _encoder.encode(profile_for(i if profiles is None else i % profiles))
    rec = evaluate(msgspec.json.decode(body, type=WorkloadProfile), ruleset)
    return DecisionRow(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        ruleset_sha256=ruleset.sha256,
        ruleset_version=ruleset.version,
        caller="bench",
        request_id=f"bench-{i}",
        family=rec.instance.family,
        instance_type=rec.instance.instance_type,
        scaling_method=rec.scaling.method,
        instances=rec.capacity.instances,
        profile=body.decode(),
        recommendation=_encoder.encode(rec).decode(),
        engine_version=__version__,  # as the service records them: impact replays each once
    )


def candidate_dir(tmp: Path) -> Path:
    """The default rules, except classic ML below 100 RPS goes to general-purpose M instances."""
    target = tmp / "candidate"
    shutil.copytree(ROOT / "rules", target)
    family = target / "tables" / "family.yaml"
    old = "      workload.bound: cpu\n      workload.model_kind: classic_ml\n    then: {family: c}"
    family.write_text(
        family.read_text().replace(old, old.replace("classic_ml\n", "classic_ml\n      traffic.peak_rps: {gte: 100}\n"))
    )
    return target


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (its workers, their fork server), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _tree_memory_kib(root: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) of ``root``'s process tree, in KiB. RSS counts pages the forked workers share once
    per process; PSS splits each shared page between its sharers, so the PSS sum is what the tree really holds."""
    rss = pss = 0
    for pid in _descendants(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far (None: it has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _backends_of(database: str) -> list[int]:
    """The Postgres backends connected to ``database`` (their process title names it)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
            pids.append(int(cmdline.parent.name))
    return pids


class TreeMemory:
    """Samples a process tree every ``interval`` seconds, in a thread: the peaks of its memory, and the CPU time its
    processes and the Postgres backends serving ``database`` used (the last value seen of each process: one that
    ends between two samples loses at most ``interval`` of it)."""

    def __init__(self, root: int, database: str, interval: float = 0.2) -> None:
        self.root, self.database, self.interval = root, database, interval
        self.peak_rss_kib = self.peak_pss_kib = 0
        self.client_cpu: dict[int, float] = {}
        self.postgres_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = _tree_memory_kib(self.root)
            self.peak_rss_kib, self.peak_pss_kib = max(self.peak_rss_kib, rss), max(self.peak_pss_kib, pss)
            for pids, seen in (
                (_descendants(self.root), self.client_cpu),
                (_backends_of(self.database), self.postgres_cpu),
            ):
                for pid in pids:
                    if (cpu := _cpu_seconds(pid)) is not None:
                        seen[pid] = cpu
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_impact(url: str, candidate: Path, limit: int, jobs: int) -> dict[str, object]:
    advisor = str(Path(sys.executable).parent / "advisor")
    env = os.environ | {"ADVISOR_DATABASE_URL": url}
    args = [advisor, "rules", "impact", "--candidate", str(candidate), "--limit", str(limit), "--format", "json"]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen([*args, "--jobs", str(jobs)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with TreeMemory(child.pid, url.rsplit("/", 1)[1]) as memory:
        stdout, stderr = child.communicate()
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"advisor rules impact failed ({child.returncode}): {stderr.decode()}")
    report = json.loads(stdout)
    return {
        "jobs": jobs,
        "decisions": report["decisions"],
        "changed": report["changed"],
        "seconds": round(elapsed, 2),
        "decisions_per_s": round(report["decisions"] / elapsed),
        "client_cpu_s": round(sum(memory.client_cpu.values()), 1),
        "postgres_cpu_s": round(sum(memory.postgres_cpu.values()), 1),
        "peak_tree_rss_mib": round(memory.peak_rss_kib / 1024, 1),
        "peak_tree_pss_mib": round(memory.peak_pss_kib / 1024, 1),
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "summary": stderr.decode().strip().splitlines()[-1:],
    }


async def create_db(admin_url: str) -> tuple[str, str]:
    name = f"advisor_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


async def drop_db(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def vacuum(url: str) -> float:
    """Vacuum the seeded table, as autovacuum would have by the time a table holds this many decisions: without it
    the index of the history's order cannot be read without visiting the table (no visibility map yet)."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) decisions")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def stored_decisions(url: str) -> int:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM decisions"))
    finally:
        await conn.close()


def measure(url: str, decisions: int, jobs_list: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        candidate = candidate_dir(Path(tmp))
        for jobs in jobs_list:
            results = []
            for limit in (max(1, decisions // 10), decisions):
                result = run_impact(url, candidate, limit, jobs)
                results.append(result)
                print(
                    f"jobs {jobs}: impact over {result['decisions']:>7} decisions: {result['seconds']:6.2f} s, "
                    f"{result['decisions_per_s']:>7,} decisions/s (process incl. start-up), "
                    f"{result['changed']} changed, peak tree RSS {result['peak_tree_rss_mib']} MiB, "
                    f"PSS {result['peak_tree_pss_mib']} MiB, load 1m {result['load_1m'][0]} -> {result['load_1m'][1]}"
                )
                print(
                    f"  stderr: {result['summary']}; CPU: advisor's processes {result['client_cpu_s']} s, "
                    f"Postgres backends {result['postgres_cpu_s']} s"
                )
            small, large = results
            marginal = (int(large["decisions"]) - int(small["decisions"])) / (
                float(large["seconds"]) - float(small["seconds"])  # type: ignore[arg-type]
            )
            print(f"jobs {jobs}: steady-state replay rate (start-up excluded): {marginal:,.0f} decisions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=100_000, help="seeded, or replayed with --reuse-db")
    parser.add_argument("--jobs", default="1,2", help="worker processes of `advisor rules impact`, comma-separated")
    parser.add_argument("--admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep-db", action="store_true", help="do not drop the seeded database; print its URL")
    kept.add_argument("--reuse-db", metavar="URL", help="replay a database a --keep-db run seeded (no seeding)")
    parser.add_argument(
        "--profiles", type=int, help="seed only this many distinct profiles, in turn (default: every one distinct)"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed (with --keep-db) and stop")
    args = parser.parse_args()
    jobs_list = [int(j) for j in args.jobs.split(",")]
    if args.reuse_db:
        stored = asyncio.run(stored_decisions(args.reuse_db))
        if stored < args.decisions:
            raise SystemExit(f"{args.reuse_db} holds {stored:,} decisions, fewer than --decisions {args.decisions:,}")
        measure(args.reuse_db, args.decisions, jobs_list)
        return
    name, url = asyncio.run(create_db(args.admin_url))
    try:
        asyncio.run(upgrade(url))
        seeded = asyncio.run(seed(url, args.decisions, args.profiles))
        print(f"seeded {args.decisions} audited decisions in {seeded:.1f} s ({args.decisions / seeded:,.0f}/s)")
        print(f"VACUUM (ANALYZE) decisions: {asyncio.run(vacuum(url)):.1f} s")
        if args.keep_db:
            print(f"kept: --reuse-db {url}")
        if not args.seed_only:
            measure(url, args.decisions, jobs_list)
    finally:
        if not args.keep_db:
            asyncio.run(drop_db(args.admin_url, name))


if __name__ == "__main__":
    main()
