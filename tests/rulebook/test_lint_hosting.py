"""`advisor rules check` analyses the hosting table like the others: gaps and unreachable rules are found."""

from __future__ import annotations

from pathlib import Path

from service.rulebook.lint import lint_ruleset
from service.rulebook.loader import parse_ruleset, ruleset_files

RULES = Path(__file__).resolve().parents[2] / "rules"
_DEFAULT = """  - id: real-time-default
    then: {mode: real_time}
"""


def _hosting_variant(text: str) -> list[tuple[str | None, str, str]]:
    files = ruleset_files(RULES)
    files["tables/hosting.yaml"] = text
    ruleset = parse_ruleset(files, label="rules")
    return [(f.rule_id, f.code, f.message) for f in lint_ruleset(ruleset) if f.file.endswith("hosting.yaml")]


def test_the_shipped_hosting_table_is_analysed_and_clean() -> None:
    assert _hosting_variant((RULES / "tables" / "hosting.yaml").read_text()) == []


def test_without_its_catch_all_the_hosting_table_has_gaps() -> None:
    text = (RULES / "tables" / "hosting.yaml").read_text()
    start = text.index(_DEFAULT)
    findings = _hosting_variant(text[:start])
    gaps = [message for _, code, message in findings if code == "gap"]
    assert gaps, findings
    assert any("sla.delivery" in message for message in gaps)


def test_a_rule_shadowed_by_an_earlier_one_is_unreachable() -> None:
    text = (RULES / "tables" / "hosting.yaml").read_text()
    shadowed = """  - id: batch-with-long-jobs
    when:
      sla.delivery: batch
      workload.processing_s: {gt: 60}
    then: {mode: asynchronous}
    because: >-
      Never fires: batch-delivery above takes every batch profile first.
"""
    at = text.index("  - id: async-processing-beyond-limit")
    findings = _hosting_variant(text[:at] + shadowed + text[at:])
    assert ("batch-with-long-jobs", "unreachable") in {(rule, code) for rule, code, _ in findings}
