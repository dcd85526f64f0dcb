"""Microbenchmark: full recommendations/s versus zen-engine evaluating one 60-rule first-hit table.

Run: .venv/bin/python bench/engine_vs_zen.py [--seconds 3]

Fair to zen-engine (see its known call-path costs): one ZenEngine created once, a loader that
returns a cached ZenDecisionContent, evaluated by key, never ZenDecision.evaluate (which builds a
new runtime per call). Both sides see the same varied inputs, cycled. "cold" evaluates every
time (no memo); "repeated" is the memo the service uses for profiles asked again, reported
separately and never mixed into the cold figure. "floor" only decodes finished recommendations
from their JSON into the contract's Structs (msgspec, in C): no engine that returns those objects
in CPython can be faster than that.
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
from service.engine.memo import RecommendationMemo
from service.rulebook.loader import load_ruleset

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
    check = engine.evaluate("family", zen_inputs[0])
    assert check["result"]["family"] == "c", check
    theirs = rate(lambda ctx: engine.evaluate("family", ctx), zen_inputs, args.seconds)

    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}")
    print(f"advisor full recommendation (6 tables, payloads, cost): {ours:,.0f} evaluations/s")
    print(f"zen-engine, one 60-rule first-hit table:                {theirs:,.0f} evaluations/s")
    print(f"advisor, repeated profiles (memo hit, encoded answer):  {warm:,.0f} evaluations/s")
    print(
        f"floor: decoding a Recommendation ({sum(map(len, encoded)) / len(encoded):,.0f} B of JSON) into its "
        f"Structs:  {floor:,.0f}/s = {floor / theirs:.2f}x zen-engine"
    )
    print(f"ratio advisor / zen-engine: {ours / theirs:.2f}x cold, {warm / theirs:.2f}x repeated (target >= 5x)")


if __name__ == "__main__":
    main()
