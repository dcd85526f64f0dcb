"""Fold bench/results/*.json into bench/results/history.csv: one row per run and server variant.

Run: .venv/bin/python bench/history.py [--prune]   (--prune removes the JSON files that the "Current
figures" table of bench/README.md does not cite, once their rows are in the CSV).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
HISTORY = RESULTS / "history.csv"
COLUMNS = [
    "file",
    "date",
    "commit",
    "kind",
    "workers",
    "variant",
    "requests_per_s",
    "ratio_to_bare",
    "p99_ms",
    "worker_rss_mib_start",
    "worker_rss_mib_end",
]


def rows(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    commit = data.get("commit", "")
    if isinstance(commit, dict):  # {"sha", "short", "dirty", ...}
        commit = commit.get("short", "") + ("-dirty" if commit.get("dirty") else "")
    common = {
        "file": path.name,
        "date": data.get("date", ""),
        "commit": commit,
        "kind": data.get("kind", ""),
        "workers": data.get("settings", {}).get("workers", ""),
    }
    if data.get("kind") == "memory":
        samples = data.get("memory", {}).get("samples", [])
        first, last = (samples[0], samples[-1]) if samples else ({}, {})
        rss = {"worker_rss_mib_start": first.get("rss_mib", ""), "worker_rss_mib_end": last.get("rss_mib", "")}
        return [common | {"variant": "memory"} | rss]
    # A run over several worker counts (http_bench.py --workers 1,2,4) keeps one table per count.
    by_workers = data.get("results_by_workers") or {str(common["workers"]): data.get("results", {})}
    out = []
    for workers, results in by_workers.items():
        bare = results.get("bare", {}).get("requests_per_s")
        for variant, result in results.items():
            rps = result.get("requests_per_s")
            out.append(
                common
                | {
                    "workers": workers,
                    "variant": variant,
                    "requests_per_s": round(rps, 1) if rps else "",
                    "ratio_to_bare": round(rps / bare, 3) if rps and bare else "",
                    "p99_ms": result.get("latency_ms", {}).get("p99", ""),
                    "worker_rss_mib_start": _first(result.get("worker_rss_mib_start")),
                    "worker_rss_mib_end": _first(result.get("worker_rss_mib_end")),
                }
            )
    return out


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else ""
    return "" if value is None else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prune", action="store_true")
    args = parser.parse_args()
    known: dict[str, list[dict[str, Any]]] = {}
    if HISTORY.exists():
        with HISTORY.open() as f:
            for row in csv.DictReader(f):
                known.setdefault(row["file"], []).append(row)
    for path in sorted(RESULTS.glob("*.json")):
        known[path.name] = rows(path)
    with HISTORY.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for name in sorted(known):
            writer.writerows(known[name])
    if args.prune:
        cited = set(re.findall(r"results/([\w.-]+\.json)", README.read_text()))
        for path in RESULTS.glob("*.json"):
            if path.name not in cited:
                path.unlink()


if __name__ == "__main__":
    main()
