"""Run rule test cases (``rules/tests/*.yaml``) against a ruleset, like ``opa test``.

Each case gives a profile and expectations; the report lists failed expectations with file and
line, and the rules that no case made fire (every rule should be exercised by a case).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from pydantic import ValidationError

from service.contract import WorkloadProfile
from service.engine.compiled import CompiledRuleset
from service.engine.evaluate import ProfileRejected, evaluate
from service.rulebook.loader import RuleFileError, RulesetInvalid, yaml_with_lines
from service.rulebook.testcases import RuleTestFile

__all__ = ["CaseResult", "RuleTestReport", "lookup", "run_rule_tests"]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    line: int | None
    name: str
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class RuleTestReport:
    results: list[CaseResult] = field(default_factory=list)
    uncovered: list[tuple[str, str]] = field(default_factory=list)  # (table, rule id)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failed and not self.uncovered


def lookup(data: Any, path: str) -> Any:
    """Follow a dotted path (``capacity.per_az.0``) into decoded JSON; _MISSING if absent."""
    node = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def run_rule_tests(ruleset: CompiledRuleset, tests_dir: str | Path, *, label: str | None = None) -> RuleTestReport:
    """Run every case in ``tests_dir/*.yaml``; raise RulesetInvalid if a test file is malformed."""
    tests_dir = Path(tests_dir)
    shown_dir = label if label is not None else tests_dir.as_posix()
    report = RuleTestReport()
    fired_anywhere: set[str] = set()
    errors: list[RuleFileError] = []
    for path in sorted(tests_dir.glob("*.yaml")):
        shown = f"{shown_dir}/{path.name}"
        try:
            data, lines = yaml_with_lines(path.read_text(encoding="utf-8"), shown)
            spec = RuleTestFile.model_validate(data)
        except RulesetInvalid as exc:
            errors.extend(exc.errors)
            continue
        except ValidationError as exc:
            errors.extend(
                RuleFileError(shown, _line(lines, e["loc"]), None, e["msg"]) for e in exc.errors(include_url=False)
            )
            continue
        for index, case in enumerate(spec.cases):
            failures, fired = _run_case(ruleset, case)
            fired_anywhere |= fired
            report.results.append(CaseResult(shown, lines.get(("cases", index)), case.name, tuple(failures)))
    if errors:
        raise RulesetInvalid(errors)
    report.uncovered = [
        (table.name, rule.id)
        for table in ruleset.tables.values()
        for rule in table.rules
        if rule.id not in fired_anywhere
    ]
    return report


def _line(lines: dict[Any, int], loc: tuple[Any, ...]) -> int | None:
    for end in range(len(loc), -1, -1):
        if tuple(loc[:end]) in lines:
            return lines[tuple(loc[:end])]
    return None


def _run_case(ruleset: CompiledRuleset, case: Any) -> tuple[list[str], set[str]]:
    try:
        profile = msgspec.convert(case.profile, WorkloadProfile)
    except msgspec.ValidationError as exc:
        return [f"profile is invalid: {exc}"], set()
    try:
        recommendation = evaluate(profile, ruleset)
    except ProfileRejected as exc:
        # Codes are kebab-case; files written before that (model_does_not_fit) still match.
        if case.rejected is not None and case.rejected.replace("_", "-") == exc.code:
            return [], {exc.rule_id} if exc.rule_id else set()
        return [f"rejected with {exc.code}: {exc.message}"], set()
    if case.rejected is not None:
        return [f"expected rejection {case.rejected!r}, got a recommendation"], set()
    data = msgspec.to_builtins(recommendation)
    fired = {entry["rule_id"] for entry in data["explanation"]}
    failures: list[str] = []
    for path, want in case.expect.items():
        got = lookup(data, path)
        if got is _MISSING:
            failures.append(f"{path}: no such field in the recommendation")
        elif got != want or (type(got) is bool and type(want) is not bool):
            failures.append(f"{path}: expected {want!r}, got {got!r}")
    failures += [f"rule '{rid}' did not fire" for rid in case.fired if rid not in fired]
    failures += [f"rule '{rid}' fired but must not" for rid in case.not_fired if rid in fired]
    codes = {w["code"] for w in data["warnings"]}
    failures += [f"warning '{code}' missing (got {sorted(codes)})" for code in case.warnings if code not in codes]
    return failures, fired
