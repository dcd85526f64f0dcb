"""Impact-analysis benchmark: replay a large audit history under a candidate ruleset.

Run: .venv/bin/python bench/impact_bench.py [--decisions 100000] [--admin-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Creates a fresh Postgres database, seeds it with N audited decisions through the real audit writer
(group commit, hash chain), then runs `advisor rules impact` in a child process against a candidate
ruleset and reports decisions re-evaluated per second and the child's peak RSS. Runs the child twice
(N/10 and N decisions) to show memory does not grow with history. Drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
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
from service.engine import compile_ruleset, evaluate
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


async def seed(url: str, n: int) -> float:
    settings = Settings(database_url=url)
    engine = create_engine(settings)
    loaded = load_ruleset(ROOT / "rules")
    await Activator(engine, RulesetRegistry(engine)).activate(loaded, by="bench")
    ruleset = compile_ruleset(loaded)
    writer = AuditWriter(engine, max_rows=1000, max_wait_ms=5)
    await writer.start()
    started = time.perf_counter()
    try:
        chunk = 2000
        for start in range(0, n, chunk):
            rows = []
            for i in range(start, min(n, start + chunk)):
                body = _encoder.encode(profile_for(i))
                rec = evaluate(msgspec.json.decode(body, type=WorkloadProfile), ruleset)
                rows.append(
                    DecisionRow(
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
                )
            await asyncio.gather(*(writer.write(row) for row in rows))
    finally:
        await writer.stop()
        await engine.dispose()
    return time.perf_counter() - started


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


def run_impact(url: str, candidate: Path, limit: int) -> dict[str, object]:
    advisor = str(Path(sys.executable).parent / "advisor")
    env = os.environ | {"ADVISOR_DATABASE_URL": url}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    out = subprocess.run(
        [advisor, "rules", "impact", "--candidate", str(candidate), "--limit", str(limit), "--format", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(out.stdout)
    return {
        "decisions": report["decisions"],
        "changed": report["changed"],
        "seconds": round(elapsed, 2),
        "decisions_per_s": round(report["decisions"] / elapsed),
        # ru_maxrss of children is the largest child so far: meaningful because runs go small to large.
        "peak_rss_mib": round(max(peak_kib, before) / 1024, 1),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name, url = asyncio.run(create_db(args.admin_url))
    try:
        asyncio.run(upgrade(url))
        seeded = asyncio.run(seed(url, args.decisions))
        print(f"seeded {args.decisions} audited decisions in {seeded:.1f} s ({args.decisions / seeded:,.0f}/s)")
        with tempfile.TemporaryDirectory() as tmp:
            candidate = candidate_dir(Path(tmp))
            results = []
            for limit in (max(1, args.decisions // 10), args.decisions):
                result = run_impact(url, candidate, limit)
                results.append(result)
                print(
                    f"impact over {result['decisions']:>7} decisions: {result['seconds']:6.2f} s, "
                    f"{result['decisions_per_s']:>7,} decisions/s (process incl. start-up), "
                    f"{result['changed']} changed, peak RSS {result['peak_rss_mib']} MiB"
                )
            small, large = results
            marginal = (int(large["decisions"]) - int(small["decisions"])) / (
                float(large["seconds"]) - float(small["seconds"])  # type: ignore[arg-type]
            )
            print(f"steady-state replay rate (start-up excluded): {marginal:,.0f} decisions/s (target >= 20,000)")
    finally:
        asyncio.run(drop_db(args.admin_url, name))


if __name__ == "__main__":
    main()
