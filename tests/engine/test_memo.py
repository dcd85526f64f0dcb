"""The memo returns exactly what a fresh evaluation would, and stays bounded."""

from __future__ import annotations

import copy

import msgspec
from profiles import WORKED_EXAMPLE, profile

from service.engine import CompiledRuleset, evaluate
from service.engine.memo import RecommendationMemo


def test_memo_answers_byte_identically_and_counts_hits(ruleset: CompiledRuleset) -> None:
    memo = RecommendationMemo(maxsize=8)
    first = memo.get(profile(WORKED_EXAMPLE), ruleset)
    again = memo.get(profile(copy.deepcopy(WORKED_EXAMPLE)), ruleset)
    assert again is first
    assert first.json == msgspec.json.encode(evaluate(profile(WORKED_EXAMPLE), ruleset))
    assert (memo.hits, memo.misses) == (1, 1)


def test_memo_is_bounded_and_keyed_by_content(ruleset: CompiledRuleset) -> None:
    memo = RecommendationMemo(maxsize=3)
    for rps in range(100, 110):
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["traffic"]["peak_rps"] = rps
        entry = memo.get(profile(body), ruleset)
        assert entry.json == msgspec.json.encode(evaluate(profile(body), ruleset))
    assert len(memo._entries) == 3
    assert memo.misses == 10
