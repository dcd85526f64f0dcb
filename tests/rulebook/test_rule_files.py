"""The shipped ruleset: valid, lint-clean, every rule exercised by a test case, schema committed."""

from __future__ import annotations

from pathlib import Path

from service.engine import compile_ruleset
from service.engine.casetests import run_rule_tests
from service.rulebook.lint import lint_ruleset
from service.rulebook.loader import load_ruleset
from service.rulebook.schema import render_schemas

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def test_default_ruleset_is_lint_clean() -> None:
    findings = lint_ruleset(load_ruleset(RULES_DIR), label="rules")
    assert [str(f) for f in findings] == []


def test_every_rule_test_case_passes_and_covers_every_rule() -> None:
    report = run_rule_tests(compile_ruleset(load_ruleset(RULES_DIR)), RULES_DIR / "tests")
    failures = [f"{r.file}:{r.line} {r.name}: {f}" for r in report.failed for f in r.failures]
    assert failures == []
    assert report.uncovered == []
    assert len(report.results) >= 20


def test_committed_json_schema_matches_the_models() -> None:
    """Regenerate with `advisor rules schema` when the rule-file models change."""
    for name, text in render_schemas().items():
        committed = RULES_DIR / "schema" / name
        assert committed.is_file(), f"{committed} is missing: run `advisor rules schema`"
        assert committed.read_text() == text, f"{committed} is stale: run `advisor rules schema`"
