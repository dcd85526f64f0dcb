"""The charts plot the decision: values read back from the SVG's data-* attributes against the JSON answer."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
from reportread import plotted

from service.contract import WorkloadProfile
from service.engine import compile_ruleset, evaluate
from service.engine.whatif import what_if_report
from service.report.model import build_report
from service.report.render import report_html_file
from service.rulebook.loader import load_ruleset, ruleset_files

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
EXAMPLES = sorted((ROOT / "docs" / "report-examples").glob("*.json"))
HOURS_PER_MONTH = 730  # AWS pricing convention, as the cost says in its formula
EXTRA_PROFILES: dict[str, dict[str, Any]] = {
    # target tracking with a mean: the peak fleet for a share mean/peak of the time
    "steady-with-mean": {
        "workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 2},
        "traffic": {"peak_rps": 400, "mean_rps": 120, "per_instance_rps": 25, "burstiness": "bursty"},
        "sla": {"p99_latency_ms": 80, "availability": 0.999},
    },
    # a window without an end: the cost falls back to the mean share, and so must the chart
    "window-without-end": {
        "workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 2},
        "traffic": {
            "peak_rps": 300,
            "mean_rps": 90,
            "per_instance_rps": 20,
            "burstiness": "periodic",
            "peak_windows": [{"cron": "cron(0 8 ? * MON-FRI *)", "rps": 300}],
        },
        "sla": {"p99_latency_ms": 100, "availability": 0.999},
    },
}
CASES = {path.stem: json.loads(path.read_text()) for path in EXAMPLES} | EXTRA_PROFILES


@pytest.fixture(scope="module")
def ruleset() -> Any:
    return compile_ruleset(load_ruleset(RULES))


def _decide(data: dict[str, Any], ruleset: Any) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    profile = msgspec.convert(data, WorkloadProfile)
    answer = json.loads(msgspec.json.encode(evaluate(profile, ruleset)))
    what_if = msgspec.to_builtins(what_if_report(profile, ruleset).what_if)
    record = {"profile": data, "recommendation": answer, "decision_id": "01234567-89ab-7def-8123-456789abcdef"}
    html = report_html_file(build_report(record, ruleset_files=ruleset_files(RULES), what_if=what_if))
    return answer, what_if, html


def test_the_examples_cover_the_three_kinds_of_report() -> None:
    assert {path.stem for path in EXAMPLES} == {"steady-cpu", "scheduled-peaks", "gpu"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_capacity_chart_fleet_hours_times_price_is_the_expected_cost(case: str, ruleset: Any) -> None:
    answer, _, html = _decide(CASES[case], ruleset)
    chart = plotted(html)["capacity"]
    segments = chart.of("fleet")
    starts = [float(s["start-h"]) for s in segments]
    ends = [float(s["end-h"]) for s in segments]
    assert starts[0] == 0 and ends[-1] == 168 and starts[1:] == ends[:-1], "the segments cover the week once"
    fleet_hours = sum((float(s["end-h"]) - float(s["start-h"])) * int(s["fleet"]) for s in segments)
    price = answer["cost"]["usd_per_hour"] / answer["capacity"]["instances"]
    monthly = fleet_hours * HOURS_PER_MONTH / 168 * price
    assert monthly == pytest.approx(answer["cost"]["usd_per_month_expected"], rel=0.01)
    capacity = answer["capacity"]
    assert int(chart.root["min"]) == capacity["min_instances"]
    assert int(chart.root["max"]) == capacity["max_instances"]
    assert {int(s["fleet"]) for s in segments} <= set(range(capacity["min_instances"], capacity["instances"] + 1))
    assert max(float(s["load-rps"]) for s in segments) == CASES[case]["traffic"]["peak_rps"]
    assert "not measured" in chart.desc, "the load is labelled as the cost model, not as data"
    for line in chart.of("az-loss"):  # what remains after the largest AZ goes, per the decision's AZ count
        assert int(line["instances"]) <= capacity["instances"] - max(capacity["per_az"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_scaling_chart_settles_at_the_answers_fleet(case: str, ruleset: Any) -> None:
    answer, _, html = _decide(CASES[case], ruleset)
    chart = plotted(html)["scaling"]
    capacity = answer["capacity"]
    (peak,) = chart.of("peak")
    assert float(peak["load-rps"]) == CASES[case]["traffic"]["peak_rps"]
    assert int(peak["instances"]) == capacity["instances"]
    levels = [(float(p["load-rps"]), int(p["instances"])) for p in chart.of("level")]
    assert levels[0] == (0.0, capacity["min_instances"])
    assert all(capacity["min_instances"] <= n <= capacity["max_instances"] for _, n in levels)
    assert [n for _, n in levels] == sorted(n for _, n in levels), "more load never means fewer instances"
    target = answer["scaling"]["target_value"]
    if target is not None:  # target tracking: n = max(min, ceil(load x 60 / TargetValue)), at most max
        for load, n in levels:
            expected = max(capacity["min_instances"], math.ceil(round(load * 60 / target, 9)))
            assert n == min(capacity["max_instances"], expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_az_diagram_and_cost_chart_plot_the_answer(case: str, ruleset: Any) -> None:
    answer, what_if, html = _decide(CASES[case], ruleset)
    charts = plotted(html)
    assert set(charts) == {"capacity", "scaling", "az", "cost"}
    per_az = answer["capacity"]["per_az"]
    bars = charts["az"].of("az") + charts["az"].of("az-down")
    all_up = [int(b["instances"]) for b in bars[: len(per_az)]]
    assert all_up == per_az
    one_down = [int(b["instances"]) for b in bars[len(per_az) :]]
    assert sum(one_down) == sum(per_az) - max(per_az) == int(charts["az"].root["survivors"])
    cost = charts["cost"]
    plan = cost.of("plan")
    assert [float(p["usd-per-month"]) for p in plan] == [answer["cost"]["usd_per_month_expected"]]
    plotted_what_if = {
        b["change"]: float(b["usd-per-month"]) for b in cost.of("cheaper") + cost.of("dearer") + cost.of("same")
    }
    assert plotted_what_if == {w["change"]: w["usd_per_month_expected"] for w in what_if}
    (span,) = cost.of("range")
    assert (float(span["min"]), float(span["peak"])) == (
        answer["cost"]["usd_per_month_min"],
        answer["cost"]["usd_per_month_peak"],
    )


def test_every_chart_has_a_title_and_a_text_alternative(ruleset: Any) -> None:
    _, _, html = _decide(CASES["scheduled-peaks"], ruleset)
    for key, chart in plotted(html).items():
        assert chart.title.strip() and len(chart.desc) > 40, key
    assert 'role="img"' in html and "aria-labelledby" in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_decision_stored_before_the_capacity_fields_renders_with_what_it_has(ruleset: Any) -> None:
    answer, _, _ = _decide(CASES["steady-cpu"], ruleset)
    old = copy.deepcopy(answer)
    for name in ("usd_per_month_expected", "usd_per_month_min", "usd_per_month_peak", "usd_per_million_requests"):
        del old["cost"][name]
    for name in ("throughput_basis", "min_instances", "max_instances", "utilization_at_peak_after_az_loss"):
        del old["capacity"][name]
    del old["hosting"]
    report = build_report({"profile": CASES["steady-cpu"], "recommendation": old})
    html = report_html_file(report)
    summary = dict(report.summary)
    assert summary["mode"] == "not recorded"
    assert "no expected cost stored" in summary["monthly cost"]
    assert set(plotted(html)) >= {"az", "cost"}
    assert [rule.rule_id for rule in report.rules] == [e["rule_id"] for e in old["explanation"]]


def test_rules_name_their_file_and_line_in_the_ruleset(ruleset: Any) -> None:
    answer, _, _ = _decide(CASES["steady-cpu"], ruleset)
    files = ruleset_files(RULES)
    report = build_report({"profile": CASES["steady-cpu"], "recommendation": answer}, ruleset_files=files)
    assert len(report.rules) == len(answer["explanation"])
    for rule in report.rules:
        assert rule.file is not None and rule.line is not None, rule.rule_id
        assert files[rule.file].splitlines()[rule.line - 1].strip() == f"- id: {rule.rule_id}"
        assert rule.reason


def test_a_plan_without_a_fleet_renders_what_it_has(ruleset: Any) -> None:
    """A hosting mode this release does not know, with no instance fleet: the summary, rules and notes still render."""
    answer, _, _ = _decide(CASES["steady-cpu"], ruleset)
    other = {key: value for key, value in answer.items() if key not in ("capacity", "availability", "scaling")}
    other["hosting"] = {"mode": "some_future_mode", "reason": "-"}
    report = build_report({"profile": CASES["steady-cpu"], "recommendation": other})
    html = report_html_file(report)
    assert dict(report.summary)["mode"] == "some_future_mode"
    assert set(plotted(html)) == {"cost"}
    assert any("capacity and scaling charts" in note for note in report.notes)
    assert any("AZ diagram" in note for note in report.notes)
    assert "Not shown: AZ diagram" in html
