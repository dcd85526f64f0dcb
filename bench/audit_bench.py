"""Audit store at scale: bytes per decision, list-page latency, verify and impact rates over a large history.

Run (from the repository root; Postgres on 127.0.0.1:5432, user postgres, trust auth):

    .venv/bin/python bench/audit_bench.py                   # 1,000,000 decisions: about 40 min on 2 cores
    .venv/bin/python bench/audit_bench.py --rows 200000 --distinct-sample 20000 --repeated-sample 20000
    .venv/bin/python bench/audit_bench.py --reuse-db postgresql://postgres@127.0.0.1:5432/NAME   # measure only

Creates a fresh database (``advisor_bench_<hex>``), migrates it and stores two rulesets, then:

1. bytes per decision: the size of every table of the public schema (heap, TOAST, each index) before and after
   ``--distinct-sample`` decisions whose profiles are all different, then ``--repeated-sample`` decisions of one
   profile (the study guide's worked example), each set written through the audit writer;
2. fills up to ``--rows`` decisions (30 % distinct profiles, 70 % from a pool of 300, see bench/audit_seed.py),
   created_at spread evenly over the last 182 days in write order, UUIDv7 ids of the same time;
3. list-page latency: ``advisor serve`` on a free loopback port, ``GET /v1/decisions`` under each filter
   (``--requests`` sequential requests: walks of ``--pages`` pages following ``next_cursor``), p50 and p99;
4. ``advisor audit verify`` and 5. ``advisor rules impact --format json`` as child processes: seconds,
   decisions/s and the child's peak RSS (its VmHWM, sampled every 50 ms).

Only public interfaces are used (the audit writer, migrations, the Activator, the CLI, the HTTP API), so the
same script measures any storage layout behind them. Prints a table and writes
bench/results/<date>-<commit>-audit.json; drops the database unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

# This script's directory is first on sys.path: bench/benchkit.py, http_rounds.py, impact_bench.py, audit_seed.py.
from audit_seed import (
    OLD_VERSION,
    RowMaker,
    TextStats,
    activate_rulesets,
    distinct_profile,
    fill_profiles,
    old_rules_dir,
    size_delta,
    sizes,
    uptime_load,
    worked_example,
    write_rows,
)
from benchkit import BIN, ROOT, fail, git, machine, start_server, stop_server
from http_report import save
from http_rounds import base_env
from impact_bench import candidate_dir, create_db, drop_db

from service.db.migrate import upgrade
from service.db.repository import DecisionRow

SPAN = timedelta(days=182)
OLD_SHARE = 0.02  # the oldest rows, decided under OLD_VERSION


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="decisions in the store when measured")
    parser.add_argument("--distinct-sample", type=int, default=100_000, help="decisions, every profile different")
    parser.add_argument("--repeated-sample", type=int, default=100_000, help="decisions, one profile repeated")
    parser.add_argument("--requests", type=int, default=200, help="list requests per filter")
    parser.add_argument("--pages", type=int, default=10, help="pages per walk along next_cursor")
    parser.add_argument("--limit", type=int, default=50, help="page size (the API's default)")
    parser.add_argument("--admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument("--reuse-db", metavar="URL", help="measure this database as it is: no seeding, no sizes")
    parser.add_argument("--skip-impact", action="store_true")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--skip-list", action="store_true")
    args = parser.parse_args(argv)
    if args.reuse_db is None and args.distinct_sample + args.repeated_sample > args.rows:
        parser.error("--rows must be at least --distinct-sample + --repeated-sample")
    if min(args.rows, args.pages, args.limit) < 1 or args.requests < 2:
        parser.error("--rows, --pages and --limit must be positive, --requests at least 2 (for percentiles)")
    return args


def urls(url: str) -> tuple[str, str]:
    """(asyncpg DSN, SQLAlchemy URL) of a database given either way."""
    dsn = re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)
    return dsn, dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def note_load(record: dict[str, Any], step: str) -> None:
    record["load"].append(
        {"step": step, "at": datetime.now(UTC).isoformat(timespec="seconds"), "uptime": uptime_load()}
    )


# --- 1 and 2: seeding -------------------------------------------------------------------------------------------


async def seed(args: argparse.Namespace, dsn: str, url: str, record: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old, current = await activate_rulesets(url, old_rules_dir(Path(tmp)))
    d, r = args.distinct_sample, args.repeated_sample
    maker = RowMaker(old, current, datetime.now(UTC) - SPAN, SPAN, args.rows, round(args.rows * OLD_SHARE))
    samples: dict[str, tuple[range, Callable[[int], DecisionRow]]] = {
        "distinct": (range(d), lambda k: maker.row(k, distinct_profile(k), keep_answer=False)),
        "repeated": (range(d, d + r), lambda k: maker.row(k, worked_example(), keep_answer=True)),
    }
    for name, (ks, make) in samples.items():
        note_load(record, f"bytes, {name}")
        stats = TextStats()
        before = await sizes(dsn)
        seconds = await write_rows(url, stats.observe(make(k) for k in ks), len(ks), f"{name} sample")
        result = size_delta(before, await sizes(dsn), len(ks)) | stats.summary() | {"write_s": round(seconds, 1)}
        record["bytes_per_decision"][name] = result
        print(
            f"{name}: {len(ks):,} decisions in {seconds:.0f} s, {result['bytes_per_decision']:,.0f} bytes each "
            f"({result['distinct_profiles']:,} different profiles, {result['distinct_recommendations']:,} different "
            f"recommendations, {result['raw_text_bytes_per_decision']:,.0f} bytes of text each)",
            flush=True,
        )
    fill = args.rows - d - r
    if fill:
        note_load(record, "fill")
        mix = fill_profiles(fill, d, maker.rng)
        rows = (
            maker.row(k, profile, keep_answer=repeated)
            for k, (profile, repeated) in zip(range(d + r, args.rows), mix, strict=True)
        )
        stats = TextStats()
        seconds = await write_rows(url, stats.observe(rows), fill, "fill")
        record["fill"] = stats.summary() | {"write_s": round(seconds, 1), "decisions_per_s": round(fill / seconds)}
        print(f"fill: {fill:,} decisions in {seconds:.0f} s ({fill / seconds:,.0f}/s), {stats.summary()}", flush=True)
    record["total_size_bytes"] = sum((await sizes(dsn)).values())
    stored = await _fetch(dsn, "SELECT count(*) FROM decisions")
    if stored != args.rows:
        fail(f"{stored} decisions stored, {args.rows} written", 1)


# --- 3: list pages ----------------------------------------------------------------------------------------------


async def pick_filters(dsn: str) -> list[tuple[str, dict[str, str], int]]:
    """(label, query parameters, matching rows): no filter, the most and least frequent value of each filter
    column, and the week ending at the middle of the stored time range."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        total = int(await conn.fetchval("SELECT count(*) FROM decisions"))
        out: list[tuple[str, dict[str, str], int]] = [("unfiltered", {}, total)]
        for column in ("family", "scaling_method", "ruleset_version"):
            counts = await conn.fetch(
                f"SELECT {column} AS v, count(*) AS n FROM decisions WHERE {column} IS NOT NULL "
                f"GROUP BY 1 ORDER BY 2 DESC, 1"
            )
            picks = [("common", counts[0])] + ([("rare", counts[-1])] if len(counts) > 1 else [])
            out += [(f"{column}={c['v']} ({kind})", {column: c["v"]}, c["n"]) for kind, c in picks]
        low, high = await conn.fetchrow("SELECT min(created_at), max(created_at) FROM decisions")
        until = low + (high - low) / 2
        since = until - timedelta(days=7)
        n = await conn.fetchval(
            "SELECT count(*) FROM decisions WHERE created_at >= $1 AND created_at < $2", since, until
        )
        window = {"since": since.isoformat(), "until": until.isoformat()}
        out.append(("since/until, one week", window, int(n)))
        return out
    finally:
        await conn.close()


def walk(conn: http.client.HTTPConnection, params: dict[str, str], args: argparse.Namespace) -> list[float]:
    """``--requests`` sequential GETs: walks of ``--pages`` pages along next_cursor; each latency in ms."""
    latencies: list[float] = []
    cursor: str | None = None
    page = 0
    while len(latencies) < args.requests:
        query = params | {"limit": str(args.limit)} | ({"cursor": cursor} if cursor else {})
        started = time.perf_counter()
        conn.request("GET", "/v1/decisions?" + urllib.parse.urlencode(query))
        response = conn.getresponse()
        body = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"GET /v1/decisions {query}: {response.status} {body[:300]!r}")
        page += 1
        cursor = json.loads(body)["next_cursor"]
        if cursor is None or page == args.pages:
            cursor, page = None, 0
    return latencies


def list_pages(args: argparse.Namespace, url: str, dsn: str, record: dict[str, Any]) -> None:
    filters = asyncio.run(pick_filters(dsn))
    env = base_env() | {"ADVISOR_DATABASE_URL": url}
    with tempfile.TemporaryDirectory() as logdir:
        server = start_server([str(BIN / "advisor"), "serve"], env, 1, Path(logdir), "audit-list")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            walk(conn, {}, argparse.Namespace(requests=20, pages=args.pages, limit=args.limit))  # warm-up
            for label, params, matching in filters:
                note_load(record, f"list {label}")
                ms = walk(conn, params, args)
                q = statistics.quantiles(ms, n=100, method="inclusive")
                result = {"params": params, "matching_rows": matching, "requests": len(ms)}
                result |= {"p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "max_ms": round(max(ms), 2)}
                record["list_pages"][label] = result
                print(f"list {label}: {matching:,} rows match, p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms", flush=True)
            conn.close()
        finally:
            stop_server(server)


# --- 4 and 5: verify and impact ---------------------------------------------------------------------------------


def run_child(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command to its end: exit code, output, seconds and its peak RSS.

    The peak is the child's own VmHWM (/proc/<pid>/status), read every 50 ms until it exits. Not wait4's
    ru_maxrss: Linux carries the forking parent's high-water mark over exec, so that figure would be this
    script's RSS (a few hundred MiB after seeding) whenever the child stays below it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        peak_kib = 0
        # WNOWAIT: the child is only looked at, not reaped, so its /proc entry stays until proc.wait().
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid))
            time.sleep(0.05)
        proc.wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return {
            "exit": proc.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace")[-2000:],
            "seconds": round(seconds, 2),
            "peak_rss_mib": round(peak_kib / 1024, 1),
        }


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def verify(url: str, record: dict[str, Any]) -> None:
    note_load(record, "verify")
    done = run_child([str(BIN / "advisor"), "audit", "verify"], base_env() | {"ADVISOR_DATABASE_URL": url})
    found = re.search(r"ok: (\d+) decisions", done["stdout"])
    if done["exit"] != 0 or found is None:
        fail(f"advisor audit verify exited {done['exit']}:\n{done['stdout']}{done['stderr']}", 1)
    n = int(found[1]) if found else 0
    record["verify"] = {k: done[k] for k in ("seconds", "peak_rss_mib")} | {
        "decisions": n,
        "decisions_per_s": round(n / done["seconds"]),
        "output": done["stdout"].strip()[:500],
    }
    print(f"verify: {n:,} decisions in {done['seconds']:.1f} s, peak RSS {done['peak_rss_mib']} MiB", flush=True)


def impact(url: str, record: dict[str, Any]) -> None:
    note_load(record, "impact")
    env = base_env() | {"ADVISOR_DATABASE_URL": url}
    with tempfile.TemporaryDirectory() as tmp:
        candidate = candidate_dir(Path(tmp))
        cmd = [str(BIN / "advisor"), "rules", "impact", "--candidate", str(candidate), "--format", "json"]
        done = run_child(cmd, env)
    if done["exit"] != 0:
        fail(f"advisor rules impact exited {done['exit']}:\n{done['stderr']}", 1)
    report = json.loads(done["stdout"])
    n = int(report["decisions"])
    record["impact"] = {k: done[k] for k in ("seconds", "peak_rss_mib")} | {
        "decisions": n,
        "changed": report["changed"],
        "decisions_per_s": round(n / done["seconds"]),
    }
    print(f"impact: {n:,} decisions in {done['seconds']:.1f} s, peak RSS {done['peak_rss_mib']} MiB", flush=True)


# --- report -----------------------------------------------------------------------------------------------------


def table(record: dict[str, Any]) -> str:
    lines = ["| measure | figure |", "|---|---|"]
    for name, b in record["bytes_per_decision"].items():
        lines.append(
            f"| bytes per decision, {name} | {b['bytes_per_decision']:,.0f} "
            f"(text {b['raw_text_bytes_per_decision']:,.0f}; {b['distinct_recommendations']:,} different answers) |"
        )
        top = [f"{rel} {moved['per_decision']:,.0f}" for rel, moved in list(b["by_relation"].items())[:4]]
        lines.append(f"| … of which | {', '.join(top)} |")
    rows = record.get("rows_measured", 0)
    for label, r in record["list_pages"].items():
        lines.append(f"| list p50 / p99 at {rows:,}, {label} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms |")
    for step in ("verify", "impact"):
        if step in record:
            r = record[step]
            lines.append(
                f"| {step} at {r['decisions']:,} | {r['seconds']:.1f} s, {r['decisions_per_s']:,} decisions/s, "
                f"peak RSS {r['peak_rss_mib']} MiB |"
            )
    return "\n".join(lines)


def new_record(args: argparse.Namespace) -> dict[str, Any]:
    changed = git("status", "--porcelain", "--untracked-files=no")
    return {
        "kind": "audit",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": {
            "sha": git("rev-parse", "HEAD"),
            "short": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(changed),
        },
        "machine": machine(),
        "python": sys.version.split()[0],
        "settings": {k: v for k, v in vars(args).items() if k not in ("admin_url", "reuse_db")}
        | {"reused_db": args.reuse_db is not None, "old_share": OLD_SHARE, "span_days": SPAN.days},
        "load": [],
        "bytes_per_decision": {},
        "list_pages": {},
    }


def measure(args: argparse.Namespace, dsn: str, url: str, record: dict[str, Any]) -> None:
    record["postgres"] = asyncio.run(_fetch(dsn, "SELECT version()"))
    record["rows_measured"] = int(asyncio.run(_fetch(dsn, "SELECT count(*) FROM decisions")))
    if not args.skip_list:
        list_pages(args, url, dsn, record)
    if not args.skip_verify:
        verify(url, record)
    if not args.skip_impact:
        impact(url, record)
    note_load(record, "end")


async def _fetch(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def main() -> None:
    args = parse_args()
    record = new_record(args)
    note_load(record, "start")
    name = None
    if args.reuse_db:
        dsn, url = urls(args.reuse_db)
    else:
        name, url = asyncio.run(create_db(args.admin_url))
        dsn, url = urls(url)
    try:
        if name is not None:
            asyncio.run(upgrade(url))
            asyncio.run(seed(args, dsn, url, record))
        measure(args, dsn, url, record)
        print("\n" + table(record))
        print(f"\nwritten: {save(record, 'audit').relative_to(ROOT)}; load (1/5/15 min) by step: ", end="")
        print(", ".join(f"{s['step']} {s['uptime'][0]}" for s in record["load"]))
    finally:
        if name is not None and not args.keep_db:
            asyncio.run(drop_db(args.admin_url, name))
        elif name is not None:
            print(f"kept: {dsn} (OLD ruleset version {OLD_VERSION})")


if __name__ == "__main__":
    main()
