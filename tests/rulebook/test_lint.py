"""The ruleset linter: unreachable and unsatisfiable rules, gaps, duplicates; exact, not sampled."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine.compiled import compile_ruleset
from service.rulebook.fields import FIELDS
from service.rulebook.lint import LintFinding, lint_ruleset
from service.rulebook.loader import LoadedRuleset, load_ruleset, parse_ruleset, ruleset_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint"


def _lint(name: str, **kwargs: Any) -> list[LintFinding]:
    return lint_ruleset(load_ruleset(FIXTURES / name, label="rules"), **kwargs)


def _variant(name: str, replace: Mapping[str, str | None]) -> LoadedRuleset:
    """The fixture's files with some replaced (None: removed), parsed from memory."""
    files = ruleset_files(FIXTURES / name)
    for rel, text in replace.items():
        if text is None:
            files.pop(rel)
        else:
            files[rel] = text
    return parse_ruleset(files, label="rules")


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _table(name: str, rules: list[dict[str, Any]], *, hit_policy: str = "first") -> str:
    for rule in rules:
        rule.setdefault("because", "A test rule, nothing more.")
    body = {"table": name, "description": "test table", "hit_policy": hit_policy, "rules": rules}
    return yaml.safe_dump(body, sort_keys=False)


def _family_rule(rule_id: str, when: dict[str, Any], family: str = "m") -> dict[str, Any]:
    return {"id": rule_id, "when": when, "then": {"family": family}}


# ---------------------------------------------------------------- the planted problems


def test_clean_ruleset_has_no_findings() -> None:
    assert _lint("clean") == []


def test_boundary_lt_then_gte_covers_everything() -> None:
    assert _lint("boundary-covered") == []


class TestUnreachable:
    def test_rule_after_a_broader_one_is_located(self) -> None:
        family = FIXTURES / "unreachable" / "tables" / "family.yaml"
        found = [f for f in _lint("unreachable") if f.rule_id == "gpu-llm"]
        assert found == [
            LintFinding(
                file="rules/tables/family.yaml",
                line=_line_of(family, "- id: gpu-llm"),
                rule_id="gpu-llm",
                severity="error",
                code="unreachable",
                message="every profile it matches is matched earlier by 'any-gpu'",
            )
        ]
        assert str(found[0]) == (
            f"rules/tables/family.yaml:{found[0].line} rule 'gpu-llm': "
            "unreachable: every profile it matches is matched earlier by 'any-gpu'"
        )

    def test_rule_covered_only_by_several_earlier_rules_names_them_all(self) -> None:
        found = {f.rule_id: f for f in _lint("unreachable")}
        assert set(found) == {"gpu-llm", "cpu-any"}
        assert found["cpu-any"].message == ("every profile it matches is matched earlier by 'cpu-light', 'cpu-heavy'")

    def test_covering_rules_are_the_ones_that_fire_not_every_overlapping_one(self) -> None:
        rules = [
            _family_rule("all-gpu", {"workload.bound": "gpu"}),
            _family_rule("gpu-llm", {"workload.bound": "gpu", "workload.model_kind": "llm"}),
            _family_rule("llm", {"workload.model_kind": "llm"}),
            _family_rule("gpu-llm-again", {"workload.bound": "gpu", "workload.model_kind": "llm"}),
            _family_rule("general-purpose", {}),
        ]
        ruleset = _variant("clean", {"tables/family.yaml": _table("family", rules)})
        found = {f.rule_id: f.message for f in lint_ruleset(ruleset)}
        # 'gpu-llm' overlaps 'gpu-llm-again' too, but never fires; only 'all-gpu' takes those profiles.
        assert found == {
            "gpu-llm": "every profile it matches is matched earlier by 'all-gpu'",
            "gpu-llm-again": "every profile it matches is matched earlier by 'all-gpu'",
        }

    def test_second_catch_all_is_unreachable(self) -> None:
        rules = [_family_rule("first", {}), _family_rule("second", {})]
        ruleset = _variant("clean", {"tables/family.yaml": _table("family", rules)})
        assert [(f.rule_id, f.code) for f in lint_ruleset(ruleset)] == [("second", "unreachable")]


class TestGaps:
    def test_missing_enum_value_is_named(self) -> None:
        family = FIXTURES / "gap" / "tables" / "family.yaml"
        (finding,) = _lint("gap")
        assert (finding.file, finding.line, finding.rule_id) == (
            "rules/tables/family.yaml",
            _line_of(family, "- id: cpu-bound"),
            None,
        )
        assert (finding.severity, finding.code) == ("error", "gap")
        assert finding.message == "no rule matches workload.bound=memory"
        assert str(finding) == f"rules/tables/family.yaml:{finding.line}: gap: no rule matches workload.bound=memory"

    def test_lt_then_gt_leaves_the_boundary_itself(self) -> None:
        (finding,) = _lint("boundary-gap")
        assert finding.code == "gap"
        assert finding.message == "no rule matches traffic.peak_rps=100"

    def test_optional_field_absent_is_a_gap(self) -> None:
        (finding,) = _lint("optional-absent")
        assert finding.code == "gap"
        assert finding.message == "no rule matches workload.model_memory_gib absent"

    def test_open_interval_to_the_domain_edge(self) -> None:
        rules = [
            _family_rule("busy", {"traffic.peak_rps": {"gt": 100}}),
            _family_rule("cpu", {"workload.bound": "cpu"}),
        ]
        ruleset = _variant("clean", {"tables/family.yaml": _table("family", rules)})
        (finding,) = lint_ruleset(ruleset)
        assert finding.message == ("no rule matches traffic.peak_rps in (0, 100], workload.bound in {memory, gpu}")

    @pytest.mark.parametrize(
        ("conditions", "message"),
        [
            ([{"lte": 2}, {"gt": 4.5}], "no rule matches traffic.peak_window_count in [3, 4]"),
            ([{"lte": 3}, {"gte": 5}], "no rule matches traffic.peak_window_count=4"),
            ([{"lt": 3}, {"gt": 3, "lt": 5}, {"gt": 4.5}], "no rule matches traffic.peak_window_count=3"),
        ],
    )
    def test_integer_field_gaps_are_integers(self, conditions: list[dict[str, float]], message: str) -> None:
        rules = [
            {"id": f"r{i}", "when": {"traffic.peak_window_count": c}, "then": {"method": "scheduled"}}
            for i, c in enumerate(conditions)
        ]
        found = lint_ruleset(_variant("clean", {"tables/scaling.yaml": _table("scaling", rules)}))
        assert [(f.file, f.code, f.message) for f in found] == [("rules/tables/scaling.yaml", "gap", message)]

    def test_decision_field_values_of_earlier_tables(self) -> None:
        sizing = _table(
            "sizing",
            [
                {
                    "id": "accelerators",
                    "when": {"decision.family": ["g", "p", "inf"]},
                    "then": {"fit_on": "accelerator_memory"},
                },
                {
                    "id": "hosts",
                    "when": {"decision.family": {"in": ["c", "m"]}},
                    "then": {"fit_on": "memory"},
                },
            ],
        )
        (finding,) = lint_ruleset(_variant("clean", {"tables/sizing.yaml": sizing}))
        assert finding.message == "no rule matches decision.family=r"

    def test_at_most_three_examples_then_and_more(self) -> None:
        rules = [
            _family_rule("one", {"workload.bound": "cpu", "priority": "cost"}),
            _family_rule("two", {"workload.model_kind": "llm", "priority": "latency"}),
            _family_rule("three", {"workload.bound": "gpu", "workload.model_kind": "vision"}),
        ]
        ruleset = _variant("clean", {"tables/family.yaml": _table("family", rules)})
        (finding,) = lint_ruleset(ruleset)
        assert finding.message.startswith("no rule matches ")
        assert finding.message.endswith("; and more")
        assert finding.message.count(";") == 3

    def test_no_rule_can_fire(self) -> None:
        rules = [_family_rule("never", {"traffic.peak_rps": {"lt": 0}})]
        ruleset = _variant("clean", {"tables/family.yaml": _table("family", rules)})
        assert [(f.code, f.message) for f in lint_ruleset(ruleset) if f.code == "gap"] == [
            ("gap", "no rule matches any profile")
        ]


def test_unsatisfiable_rules() -> None:
    family = FIXTURES / "unsatisfiable" / "tables" / "family.yaml"
    found = {f.rule_id: f for f in _lint("unsatisfiable")}
    assert set(found) == {"contradiction", "too-big", "fractional-steps", "excluded-everything"}
    assert all(f.severity == "error" and f.code == "unsatisfiable" for f in found.values())
    assert found["contradiction"].line == _line_of(family, "- id: contradiction")
    assert str(found["contradiction"]) == (
        f"rules/tables/family.yaml:{found['contradiction'].line} rule 'contradiction': unsatisfiable: "
        "no valid value of traffic.peak_rps (numbers in (0, 10000000]) satisfies {gt: 5, lt: 3}"
    )
    assert "workload.model_memory_gib (numbers in (0, 4096]) satisfies {gt: 5000}" in found["too-big"].message
    assert "workload.pipeline_steps (integers in [1, 100]) satisfies 2.5" in found["fractional-steps"].message
    assert found["excluded-everything"].message.endswith("satisfies {not_in: [cpu, memory, gpu]}")


def test_empty_list_condition_is_unsatisfiable() -> None:
    rules = [_family_rule("nothing", {"workload.bound": []}), _family_rule("general-purpose", {})]
    ruleset = _variant("clean", {"tables/family.yaml": _table("family", rules)})
    assert [(f.rule_id, f.code) for f in lint_ruleset(ruleset)] == [("nothing", "unsatisfiable")]


class TestCollect:
    def test_duplicates_and_unsatisfiable(self) -> None:
        monitoring = FIXTURES / "collect" / "tables" / "monitoring.yaml"
        found = _lint("collect")
        assert [(f.rule_id, f.severity, f.code) for f in found] == [
            ("memory-tracing", "warning", "duplicate"),
            ("gpu-never", "error", "unsatisfiable"),
        ]
        assert found[0].file == "rules/tables/monitoring.yaml"
        assert found[0].line == _line_of(monitoring, "- id: memory-tracing")
        assert found[0].message == "matches exactly the same profiles as 'memory-pressure'"

    def test_collect_tables_have_no_gaps_or_shadowing(self) -> None:
        monitoring = _table(
            "monitoring",
            [
                {"id": "cpu", "when": {"decision.family": "c"}, "then": {"tools": ["x-ray"]}},
                {"id": "any", "when": {"decision.family": ["c", "m"]}, "then": {"tools": ["cloudwatch"]}},
            ],
            hit_policy="collect",
        )
        assert lint_ruleset(_variant("clean", {"tables/monitoring.yaml": monitoring})) == []


# ---------------------------------------------------------------- locations and limits


def test_label_prefixes_the_file() -> None:
    (finding,) = lint_ruleset(load_ruleset(FIXTURES / "gap"), label="staged/2026.1")
    assert finding.file == "staged/2026.1/tables/family.yaml"


def test_findings_name_the_files_that_were_loaded(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    for rel, text in ruleset_files(FIXTURES / "gap").items():
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        (staged / rel).write_text(text)
    (finding,) = lint_ruleset(load_ruleset(staged))
    assert finding.file == f"{staged.as_posix()}/tables/family.yaml"


def test_findings_name_the_file_that_holds_the_table() -> None:
    # The sizing table lives in an oddly named file.
    sizing = _table(
        "sizing",
        [
            {
                "id": "general-memory",
                "when": {"decision.family": ["c", "m", "r"]},
                "then": {"fit_on": "memory"},
            }
        ],
    )
    ruleset = _variant("clean", {"tables/sizing.yaml": None, "tables/zz-memory.yaml": sizing})
    (finding,) = lint_ruleset(ruleset)
    assert (finding.file, finding.line, finding.code) == ("rules/tables/zz-memory.yaml", 5, "gap")


def test_too_large_table_is_a_warning_but_unsatisfiable_rules_are_still_found() -> None:
    found = _lint("unsatisfiable", max_profile_classes=10)
    too_large = [f for f in found if f.code == "too-large"]
    assert len(too_large) == 1
    assert too_large[0].severity == "warning"
    assert too_large[0].rule_id is None
    assert "table too large to analyse exhaustively" in str(too_large[0])
    assert sum(f.code == "unsatisfiable" for f in found) == 4


def test_findings_are_immutable() -> None:
    (finding,) = _lint("gap")
    with pytest.raises(AttributeError):
        finding.line = 3  # type: ignore[misc]


# ---------------------------------------------------------------- exactness against the engine

# Fields and constants small enough to enumerate an independent oracle for every generated table.
_NUMERIC_CONSTANTS: dict[str, list[float]] = {
    "traffic.peak_rps": [0, 1, 2.5, 100, 1e7, 2e7],
    "workload.pipeline_steps": [0, 1, 2, 2.5, 3, 5, 100],
    "workload.model_memory_gib": [0, 40, 40.5, 4096, 5000],
}
_ENUM = "workload.bound"


@st.composite
def _numeric_condition(draw: st.DrawFn, field: str) -> Any:
    consts = st.sampled_from(_NUMERIC_CONSTANTS[field])
    kind = draw(st.sampled_from(["scalar", "list", "ops"]))
    if kind == "scalar":
        return draw(consts)
    if kind == "list":
        return draw(st.lists(consts, min_size=1, max_size=3))
    ops: dict[str, Any] = {}
    if draw(st.booleans()):
        ops[draw(st.sampled_from(["gt", "gte"]))] = draw(consts)
    if draw(st.booleans()):
        ops[draw(st.sampled_from(["lt", "lte"]))] = draw(consts)
    if draw(st.integers(0, 4)) == 0:
        key = draw(st.sampled_from(["eq", "in", "not_in"]))
        ops[key] = draw(consts) if key == "eq" else draw(st.lists(consts, min_size=1, max_size=2))
    return ops or {"gte": draw(consts)}


@st.composite
def _enum_condition(draw: st.DrawFn) -> Any:
    values = st.sampled_from(["cpu", "memory", "gpu"])
    kind = draw(st.sampled_from(["scalar", "list", "in", "not_in"]))
    if kind == "scalar":
        return draw(values)
    some = draw(st.lists(values, min_size=1, max_size=3))
    return some if kind == "list" else {kind: some}


@st.composite
def _family_table(draw: st.DrawFn) -> list[dict[str, Any]]:
    used = draw(st.lists(st.sampled_from([_ENUM, *_NUMERIC_CONSTANTS]), min_size=1, max_size=3, unique=True))
    rules = []
    for index in range(draw(st.integers(1, 6))):
        # Mostly conditional rules: a catch-all closes every gap and leaves little to check.
        at_least = 0 if draw(st.integers(0, 9)) == 0 else 1
        fields = draw(st.lists(st.sampled_from(used), min_size=at_least, max_size=len(used), unique=True))
        when = {f: draw(_enum_condition() if f == _ENUM else _numeric_condition(f)) for f in fields}
        rules.append(_family_rule(f"r{index}", when))
    return rules


def _candidates(field: str) -> list[Any]:
    """Values that meet every cell of the field: each constant and its neighbours, absent."""
    spec = FIELDS[field]
    if spec.values is not None:
        return list(spec.values)
    anchors = [*_NUMERIC_CONSTANTS[field], spec.low, spec.high]
    near: set[float]
    if spec.integer:
        near = {n for x in anchors for n in (math.floor(x) - 1, math.floor(x), math.floor(x) + 1, math.ceil(x))}
    else:
        near = {y for x in anchors for y in (x, math.nextafter(x, -math.inf), math.nextafter(x, math.inf))}
    inside = sorted(
        x
        for x in near
        if (x > spec.low if spec.low_open else x >= spec.low) and (x < spec.high if spec.high_open else x <= spec.high)
    )
    return [*inside, None] if spec.optional else inside


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_family_table())
def test_lint_agrees_with_the_engine_on_every_candidate_profile(rules: list[dict[str, Any]]) -> None:
    ruleset = _variant("clean", {"tables/family.yaml": _table("family", rules)})
    found = [f for f in lint_ruleset(ruleset) if f.file == "rules/tables/family.yaml"]
    table = compile_ruleset(ruleset).tables["family"]

    fields = sorted({f for rule in rules for f in rule["when"]})
    fired: set[str] = set()
    matched: set[str] = set()
    gap = False
    for values in itertools.product(*(_candidates(f) for f in fields)):
        facts = {f: v for f, v in zip(fields, values, strict=True) if v is not None}
        matched.update(rule.id for rule in table.rules if rule.matches(facts))
        first = table.first(facts)
        if first is None:
            gap = True
        else:
            fired.add(first.id)

    ids = {rule["id"] for rule in rules}
    assert {f.rule_id for f in found if f.code == "unsatisfiable"} == ids - matched
    assert {f.rule_id for f in found if f.code == "unreachable"} == matched - fired
    assert any(f.code == "gap" for f in found) == gap
