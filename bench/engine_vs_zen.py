"""Microbenchmark: the advisor's decision-table matcher against zen-engine on the same table.

Run: .venv/bin/python bench/engine_vs_zen.py [--seconds 3]

Like with like: one 60-rule first-hit table (bound x model_kind x peak_rps range -> family) is
evaluated by zen-engine and by the advisor's compiled table matcher (the same rules as a family
table of a ruleset), on the same inputs, and both must give the same family for every input
before either is timed. Fair to zen-engine (see its known call-path costs): one ZenEngine created
once, a loader that returns a cached ZenDecisionContent, evaluated by key, never
ZenDecision.evaluate (which builds a new runtime per call).

On their own lines, not compared with one table: the full recommendation's cold rate (six tables,
instance selection, capacity, payloads, cost), the memo's rate for profiles asked again, and a
floor: finished recommendations decoded from their JSON into the contract's Structs (msgspec, in
C), below which no engine returning those objects in CPython can go.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from itertools import cycle, product
from pathlib import Path
from typing import Any

import msgspec
import zen

from service.contract import Recommendation, WorkloadProfile
from service.engine import compile_ruleset, evaluate
from service.engine.compiled import CompiledTable
from service.engine.memo import RecommendationMemo
from service.rulebook.loader import load_ruleset, parse_ruleset, ruleset_files

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = ["cpu", "memory", "gpu"]
KINDS = ["classic_ml", "deep_learning", "vision", "llm", "graph"]
RPS_RANGES = ["[0..10)", "[10..100)", "[100..1000)", ">= 1000"]
FAMILY = {"cpu": "c", "memory": "r", "gpu": "g"}


def zen_table() -> dict[str, Any]:
    """60 rules: bound x model_kind x peak_rps range -> family, first hit."""
    rules = [
        {"_id": f"r{i}", "b": json.dumps(b), "k": json.dumps(k), "p": p, "o": json.dumps(FAMILY[b])}
        for i, (b, k, p) in enumerate(product(BOUNDS, KINDS, RPS_RANGES))
    ]
    return {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
            {
                "id": "dt",
                "type": "decisionTableNode",
                "name": "family",
                "position": {"x": 200, "y": 0},
                "content": {
                    "hitPolicy": "first",
                    "inputs": [
                        {"id": "b", "name": "bound", "field": "bound"},
                        {"id": "k", "name": "kind", "field": "model_kind"},
                        {"id": "p", "name": "peak", "field": "peak_rps"},
                    ],
                    "outputs": [{"id": "o", "name": "family", "field": "family"}],
                    "rules": rules,
                },
            },
            {"id": "out", "type": "outputNode", "name": "Response", "position": {"x": 400, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "dt", "type": "edge"},
            {"id": "e2", "sourceId": "dt", "targetId": "out", "type": "edge"},
        ],
    }


_RANGE_CONDITIONS = {
    "[0..10)": {"gte": 0, "lt": 10},
    "[10..100)": {"gte": 10, "lt": 100},
    "[100..1000)": {"gte": 100, "lt": 1000},
    ">= 1000": {"gte": 1000},
}


def advisor_table() -> CompiledTable:
    """The same 60 rules as zen_table(), as the family table of the shipped ruleset, compiled."""
    lines = ["table: family", "description: 60-rule benchmark table", "hit_policy: first", "rules:"]
    for i, (b, k, p) in enumerate(product(BOUNDS, KINDS, RPS_RANGES)):
        cond = json.dumps(_RANGE_CONDITIONS[p])
        lines += [
            f"  - id: r{i}",
            f"    when: {{workload.bound: {b}, workload.model_kind: {k}, traffic.peak_rps: {cond}}}",
            f"    then: {{family: {FAMILY[b]}}}",
            "    because: One cell of the benchmark table.",
        ]
    files = dict(ruleset_files(ROOT / "rules"))
    files["tables/family.yaml"] = "\n".join(lines) + "\n"
    table = compile_ruleset(parse_ruleset(files, label="bench")).tables["family"]
    assert table is not None
    return table


def profiles() -> list[WorkloadProfile]:
    out = []
    for i, (b, k) in enumerate(product(BOUNDS, KINDS)):
        out.append(
            msgspec.convert(
                {
                    "workload": {"bound": b, "model_kind": k, "model_memory_gib": 1 + i % 8},
                    "traffic": {
                        "peak_rps": 5 + 37 * i,
                        "per_instance_rps": 3 + i % 11,
                        "burstiness": ["steady", "bursty", "periodic"][i % 3],
                    },
                    "sla": {"p99_latency_ms": 200 + i, "availability": [0.99, 0.999, 0.9999][i % 3]},
                },
                WorkloadProfile,
            )
        )
    return out


def rate(fn: Any, inputs: list[Any], seconds: float) -> float:
    for item in inputs * 20:  # warm-up
        fn(item)
    n, it, start = 0, cycle(inputs), time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(500):
            fn(next(it))
        n += 500
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    ruleset = compile_ruleset(load_ruleset(ROOT / "rules"))
    ours_inputs = profiles()
    ours = rate(lambda p: evaluate(p, ruleset), ours_inputs, args.seconds)
    memo = RecommendationMemo()
    warm = rate(lambda p: memo.get(p, ruleset), ours_inputs, args.seconds)
    # The least any engine pays that returns the contract's Recommendation objects in CPython: building the
    # same object graph straight from its JSON with msgspec's C decoder, no rule or arithmetic at all.
    decoder = msgspec.json.Decoder(Recommendation)
    encoded = [msgspec.json.encode(evaluate(p, ruleset)) for p in ours_inputs]
    floor = rate(decoder.decode, encoded, args.seconds)

    content = zen.ZenDecisionContent(json.dumps(zen_table()))
    engine = zen.ZenEngine({"loader": lambda key: content})
    zen_inputs = [
        {"bound": p.workload.bound, "model_kind": p.workload.model_kind, "peak_rps": p.traffic.peak_rps}
        for p in ours_inputs
    ]
    table = advisor_table()
    table_inputs = [
        {"workload.bound": z["bound"], "workload.model_kind": z["model_kind"], "traffic.peak_rps": z["peak_rps"]}
        for z in zen_inputs
    ]
    for z, facts in zip(zen_inputs, table_inputs, strict=True):  # same table, same answers
        rule = table.first(facts)
        assert rule is not None and engine.evaluate("family", z)["result"]["family"] == rule.then.family, z
    theirs = rate(lambda ctx: engine.evaluate("family", ctx), zen_inputs, args.seconds)
    matcher = rate(lambda facts: table.first(facts).then.family, table_inputs, args.seconds)  # type: ignore[union-attr]

    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}")
    print(f"zen-engine, one 60-rule first-hit table:                {theirs:,.0f} evaluations/s")
    print(f"advisor's table matcher, the same table:                {matcher:,.0f} evaluations/s")
    print(f"ratio advisor matcher / zen-engine: {matcher / theirs:.2f}x (target >= 5x)")
    print(f"advisor full recommendation, cold (6 tables, selection, payloads, cost): {ours:,.0f}/s")
    print(f"advisor, repeated profiles (memo hit, encoded answer):  {warm:,.0f}/s")
    print(
        f"floor: decoding a finished Recommendation ({sum(map(len, encoded)) / len(encoded):,.0f} B of JSON) into "
        f"its Structs: {floor:,.0f}/s"
    )


if __name__ == "__main__":
    main()
