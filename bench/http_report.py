"""The tables, targets and result files of bench/http_bench.py.

Run nothing here; see bench/http_bench.py and bench/README.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchkit import BENCH

RESULTS = BENCH / "results"
AUDITED = ("advisor", "logged", "distinct", "naive")

# Targets from the issue: reported, never asserted.
TARGET_RPS_RATIO = 0.70
TARGET_P99_RATIO = 3.0
TARGET_RSS_RATIO = 1.5
# With several worker counts: an audited variant's ratio to bare at N workers ÷ its ratio at the smallest N.
TARGET_SCALING = 0.9


def share(value: float, of: float) -> float:
    """``value / of``; NaN (never a met target) when the bare row has nothing to compare with."""
    return value / of if of else math.nan


def table(results: dict[str, dict[str, Any]]) -> str:
    """The table of one worker count (the output of a run with a single ``--workers``)."""
    bare = results.get("bare")
    head = (
        "| variant | req/s | p50 ms | p99 ms | req/s ÷ bare | p99 ÷ bare | 2xx (wrk) | non-2xx | socket err "
        "| in flight at stop | audit rows | audit rows vs 2xx | rows/txn | worker CPU busy | commit in flight |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in results.values():
        ratio = f"{share(r['requests_per_s'], bare['requests_per_s']):.2f}" if bare else "-"
        p99 = f"{share(r['latency_ms']['p99'], bare['latency_ms']['p99']):.2f}" if bare else "-"
        a = r.get("audit")
        lines.append(
            f"| {r['label']} | {r['requests_per_s']:.0f} | {r['latency_ms']['p50']:.2f} | {r['latency_ms']['p99']:.2f} "
            f"| {ratio} | {p99} | {r['ok_2xx']} | {r['non_2xx']} | {r['socket_errors']} | {r['in_flight_at_stop']} "
            f"| {a['audit_rows'] if a else '-'} | {a['verdict'] if a else '-'} "
            f"| {a['rows_per_transaction'] if a else '-'} | {r['worker_cpu']['busy']:.0%} "
            f"| {format(a['commit_busy'], '.0%') if a else '-'} |"
        )
    return "\n".join(lines)


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    bare = results.get("bare")
    for name, label in (("advisor", "advisor"), ("distinct", "distinct profiles:")):
        row = results.get(name)
        if not (bare and row):
            continue
        rps = share(row["requests_per_s"], bare["requests_per_s"])
        p99 = share(row["latency_ms"]["p99"], bare["latency_ms"]["p99"])
        out.append({"target": f"{label} req/s >= {TARGET_RPS_RATIO:.2f} x bare", "value": round(rps, 3)})
        out[-1]["met"] = rps >= TARGET_RPS_RATIO
        out.append({"target": f"{label} p99 <= {TARGET_P99_RATIO:g} x bare p99", "value": round(p99, 3)})
        out[-1]["met"] = p99 <= TARGET_P99_RATIO
    for name in AUDITED:
        if name in results:
            lost = results[name]["audit"]["lost_rows"] + results[name]["audit"]["unexplained_rows"]
            out.append({"target": f"{name}: no lost (or unexplained) audit rows", "value": lost, "met": lost == 0})
    return out


def print_targets(found: list[dict[str, Any]]) -> None:
    for t in found:
        at = f"N={t['workers']}: " if "workers" in t else ""
        print(f"- {at}{t['target']}: {t['value']} -> {'met' if t['met'] else 'NOT MET'}")


# --- several worker counts ------------------------------------------------------------------------------------


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per variant: audited decisions (2xx) per second and p99, each ÷ the bare endpoint's at the same N."""
    bare = results.get("bare")
    out = {}
    for name, r in results.items():
        out[name] = {
            "decisions_per_s_vs_bare": share(r["ok_2xx_per_s"], bare["ok_2xx_per_s"]) if bare else math.nan,
            "p99_vs_bare": share(r["latency_ms"]["p99"], bare["latency_ms"]["p99"]) if bare else math.nan,
        }
    return out


def _chain(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def workers_table(by_workers: dict[int, dict[str, dict[str, Any]]]) -> str:
    """One row per (N, variant): the figures that show whether N workers convoy on the audit chain."""
    head = (
        "| workers | variant | decisions/s | ÷ bare (same N) | p50 ms | p99 ms | p99 ÷ bare p99 | rows/commit "
        "(transactions) | commit in flight | chain wait s/s | chain wait ms/commit | lost rows |"
    )
    lines = [head, "|" + "---|" * 12]
    for n, results in by_workers.items():
        shares = ratios(results)
        for name, r in results.items():
            a = r.get("audit")
            lost = "-" if a is None else str(a["lost_rows"] + a["unexplained_rows"])
            lines.append(
                f"| {n} | {name} | {r['ok_2xx_per_s']:.0f} | {shares[name]['decisions_per_s_vs_bare']:.2f} "
                f"| {r['latency_ms']['p50']:.2f} | {r['latency_ms']['p99']:.2f} | {shares[name]['p99_vs_bare']:.2f} "
                + (
                    f"| {a['rows_per_transaction']} ({a['transactions']}) | {a['commit_busy']:.0%} "
                    f"| {_chain(a['chain_wait_s_per_s'], '.3f')} | {_chain(a['chain_wait_ms_per_commit'], '.3f')} "
                    if a
                    else "| - | - | - | - "
                )
                + f"| {lost} |"
            )
    return "\n".join(lines)


def scaling(by_workers: dict[int, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per audited variant and N: its ratio to bare at N ÷ its ratio at the smallest N, and p99 ÷ bare p99 at N;
    with the targets (reported, never asserted)."""
    counts = sorted(by_workers)
    base_n = counts[0]
    base = ratios(by_workers[base_n])
    out = []
    for name in AUDITED:
        for n in counts:
            if name not in by_workers[n] or "bare" not in by_workers[n]:
                continue
            here = ratios(by_workers[n])[name]
            kept = share(here["decisions_per_s_vs_bare"], base[name]["decisions_per_s_vs_bare"])
            rows = by_workers[n][name]["audit"]
            out.append(
                {
                    "variant": name,
                    "workers": n,
                    "ratio_vs_bare": round(here["decisions_per_s_vs_bare"], 3),
                    f"ratio_vs_ratio_at_{base_n}": round(kept, 3),
                    "scaling_met": None if n == base_n else kept >= TARGET_SCALING,
                    "p99_vs_bare": round(here["p99_vs_bare"], 3),
                    "p99_met": here["p99_vs_bare"] <= TARGET_P99_RATIO,
                    "lost_rows": rows["lost_rows"] + rows["unexplained_rows"],
                }
            )
    return out


def scaling_table(found: list[dict[str, Any]], base_n: int) -> str:
    head = (
        f"| variant | workers | ÷ bare | ÷ its ratio at N={base_n} (goal ≥ {TARGET_SCALING:g}) "
        f"| p99 ÷ bare p99 (goal ≤ {TARGET_P99_RATIO:g}) | lost rows |"
    )
    lines = [head, "|" + "---|" * 6]
    for s in found:
        kept = s[f"ratio_vs_ratio_at_{base_n}"]
        verdict = "" if s["scaling_met"] is None else (" met" if s["scaling_met"] else " NOT MET")
        lines.append(
            f"| {s['variant']} | {s['workers']} | {s['ratio_vs_bare']:.2f} | {kept:.2f}{verdict} "
            f"| {s['p99_vs_bare']:.2f} {'met' if s['p99_met'] else 'NOT MET'} | {s['lost_rows']} |"
        )
    return "\n".join(lines)


def save(record: dict[str, Any], kind: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"{record['date'][:10]}-{record['commit']['short'] or 'nocommit'}-{kind}"
    path = RESULTS / f"{stem}.json"
    n = 2
    while path.exists():
        path = RESULTS / f"{stem}-{n}.json"
        n += 1
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
