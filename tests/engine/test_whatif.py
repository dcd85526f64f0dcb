"""What-if counterfactuals: which ones, priced against the plan, deterministic, refusals listed with why."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import msgspec
import yaml
from profiles import WORKED_EXAMPLE, profile

from service.contract import WhatIf, WhatIfReport
from service.engine import CompiledRuleset, ProfileRejected, compile_ruleset, evaluate
from service.engine.whatif import what_if, what_if_report
from service.rulebook.loader import load_ruleset


def _report(ruleset: CompiledRuleset, **changes: Any) -> WhatIfReport:
    data = copy.deepcopy(WORKED_EXAMPLE)
    for key, value in changes.items():
        if isinstance(value, dict):
            data[key] = data.get(key, {}) | value
        else:
            data[key] = value
    return what_if_report(profile(data), ruleset)


def _by_change(report: WhatIfReport) -> dict[str, WhatIf]:
    return {entry.change: entry for entry in report.what_if}


def _other_families(ruleset: CompiledRuleset, own: str) -> list[str]:
    allowed = {rule.then.family for rule in ruleset.tables["family"].rules}
    return [f for f in ruleset.by_family if f in allowed and f != own]


def test_worked_example_gets_every_kind_of_counterfactual(ruleset: CompiledRuleset) -> None:
    report = _report(ruleset)
    recommendation = evaluate(profile(WORKED_EXAMPLE), ruleset)
    assert report.instance_type == recommendation.instance.instance_type
    assert report.instances == recommendation.capacity.instances
    assert report.usd_per_month_expected == recommendation.cost.usd_per_month_expected
    assert report.ruleset == recommendation.ruleset
    entries = _by_change(report)
    assert recommendation.availability.az_count == 3
    assert {"az_count=2", "az_count=4", "target_utilization=0.6", "target_utilization=0.8"} <= entries.keys()
    asked = {f"family={f}" for f in _other_families(ruleset, recommendation.instance.family)}
    refused = {n.change for n in report.not_possible}
    assert asked <= entries.keys() | refused
    assert "family=m" in entries  # a CPU model fits the m family
    own = recommendation.instance.family
    newest = max(i.generation for i in ruleset.by_family[own])
    generation = [e for e in report.what_if if e.change.startswith("generation=")]
    assert len(generation) == 1
    assert ruleset.instance_types[generation[0].instance_type].generation == newest
    for entry in report.what_if:
        assert entry.delta_usd_per_month == round(entry.usd_per_month_expected - report.usd_per_month_expected, 2)
        assert entry.note


def test_counterfactual_order_is_fixed(ruleset: CompiledRuleset) -> None:
    changes = [e.change for e in _report(ruleset).what_if]
    kinds = [c.split("=")[0] for c in changes]
    assert kinds == sorted(kinds, key=["az_count", "target_utilization", "family", "generation", "hosting"].index)
    assert changes[:4] == ["az_count=2", "az_count=4", "target_utilization=0.6", "target_utilization=0.8"]


def test_same_input_same_bytes(ruleset: CompiledRuleset) -> None:
    first = msgspec.json.encode(_report(ruleset))
    assert msgspec.json.encode(_report(ruleset)) == first
    assert msgspec.json.encode(what_if(profile(WORKED_EXAMPLE), ruleset)) == msgspec.json.encode(
        msgspec.json.decode(first, type=WhatIfReport).what_if
    )


def test_fewer_azs_sized_to_survive_an_az_loss_cost_more(ruleset: CompiledRuleset) -> None:
    # The worked example survives the loss of one AZ: over 2 AZs, the one left must carry the whole peak, so one
    # fewer AZ costs more and one more AZ costs less (the availability rule's own reason for 3 AZs).
    entries = _by_change(_report(ruleset))
    fewer, more = entries["az_count=2"], entries["az_count=4"]
    assert fewer.delta_usd_per_month > 0
    assert more.delta_usd_per_month < 0
    assert "left after losing one carry the peak" in fewer.note


def test_one_fewer_az_without_az_loss_sizing_costs_less(ruleset: CompiledRuleset) -> None:
    # 99 %: two AZs or more, not sized for the loss of one; 11 instances round up to 15 over 5 AZs, 12 over 4.
    report = _report(ruleset, sla={"availability": 0.99}, az_count=5)
    fewer = _by_change(report)["az_count=4"]
    assert fewer.usd_per_month_expected <= report.usd_per_month_expected
    assert fewer.delta_usd_per_month < 0
    assert fewer.instances < report.instances


def test_az_counts_stay_within_two_to_six(ruleset: CompiledRuleset) -> None:
    report = _report(ruleset, sla={"availability": 0.99}, az_count=2)
    entries = _by_change(report)
    assert "az_count=3" in entries
    assert "az_count=1" not in entries
    assert [n.change for n in report.not_possible if n.change.startswith("az_count")] == ["az_count=1"]


def test_single_az_plan_says_why_az_count_does_not_apply(ruleset: CompiledRuleset) -> None:
    report = _report(ruleset, sla={"availability": 0.95})
    assert not [e for e in report.what_if if e.change.startswith("az_count")]
    (single,) = [n for n in report.not_possible if n.change == "az_count"]
    assert "single-AZ" in single.reason
    assert single.code is None


def test_the_profiles_own_utilisation_is_left_out(ruleset: CompiledRuleset) -> None:
    changes = [e.change for e in _report(ruleset, target_utilization=0.6).what_if]
    assert "target_utilization=0.6" not in changes
    assert "target_utilization=0.8" in changes


def test_family_the_model_fits_nowhere_in_is_listed_as_not_possible(ruleset: CompiledRuleset) -> None:
    llm = {
        "workload": {"bound": "gpu", "model_kind": "llm", "model_memory_gib": 140},
        "traffic": {"peak_rps": 5, "per_instance_rps": 1, "burstiness": "steady"},
    }
    report = _report(ruleset, **llm)
    refused = {n.change: n for n in report.not_possible}
    assert refused["family=c"].code == "model-does-not-fit"
    assert "family=c" not in _by_change(report)
    assert "fits no instance type of family 'c'" in refused["family=c"].reason


def test_another_family_says_the_rate_is_assumed_there(ruleset: CompiledRuleset) -> None:
    tested = {"traffic": {"tested_instance_type": "ml.c6i.large"}}
    entries = _by_change(_report(ruleset, **tested))
    note = entries["family=g"].note if "family=g" in entries else entries["family=m"].note
    assert "not measured" in note
    assert "not known" in note


def test_post_path_does_not_compute_what_if(ruleset: CompiledRuleset) -> None:
    recommendation = msgspec.to_builtins(evaluate(profile(WORKED_EXAMPLE), ruleset))
    assert "what_if" not in recommendation


_DEV = {
    "name": "dev-xgb",
    "workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 1.5, "processing_s": 0.2},
    "traffic": {"peak_rps": 0.2, "per_instance_rps": 20, "burstiness": "bursty"},
    "sla": {"p99_latency_ms": 2000, "availability": 0.99},
}


def test_a_real_time_answer_is_compared_with_serverless_and_provisioned_concurrency(ruleset: CompiledRuleset) -> None:
    """Cold starts not acceptable: real-time is chosen, and what-if prices the best other mode, serverless with
    provisioned concurrency, against it."""
    report = what_if_report(profile(_DEV), ruleset)
    recommendation = evaluate(profile(_DEV), ruleset)
    assert report.hosting_mode == recommendation.hosting.mode == "real_time"
    (entry,) = [e for e in report.what_if if e.change.startswith("hosting=")]
    assert entry.change == "hosting=serverless" and entry.hosting_mode == "serverless"
    assert entry.instance_type is None and entry.instances is None
    assert entry.usd_per_month_expected < report.usd_per_month_expected
    assert entry.delta_usd_per_month == round(entry.usd_per_month_expected - report.usd_per_month_expected, 2)
    reason = next(r.reason for r in recommendation.hosting.rejected if r.mode == "serverless")
    assert f"{entry.usd_per_month_expected:g}" in reason


def test_a_serverless_answer_is_priced_as_serverless_and_has_no_instance_counterfactuals(
    ruleset: CompiledRuleset,
) -> None:
    data = {**_DEV, "sla": {**_DEV["sla"], "cold_start_ok": True}}  # type: ignore[dict-item]
    report = what_if_report(profile(data), ruleset)
    recommendation = evaluate(profile(data), ruleset)
    assert report.hosting_mode == "serverless" and report.instance_type is None
    assert report.usd_per_month_expected == recommendation.cost.usd_per_month_expected
    assert {n.change for n in report.not_possible} == {"az_count", "target_utilization", "family", "generation"}
    (entry,) = report.what_if
    assert entry.change == "hosting=real_time" and entry.delta_usd_per_month > 0


_SHARED_TINY = {
    "workload": {
        "bound": "cpu",
        "model_kind": "classic_ml",
        "model_memory_gib": 0.2,
        "processing_s": 0.01,
        "shares_endpoint": True,
    },
    "traffic": {"peak_rps": 0.5, "per_instance_rps": 100, "burstiness": "steady"},
    "sla": {"p99_latency_ms": 100, "availability": 0.999},
}


def test_an_inference_component_is_compared_with_the_best_other_mode(ruleset: CompiledRuleset) -> None:
    """The report states the component's own figures (its reserved share, the instances its copies occupy) and
    prices the cheapest other mode that could serve; a model that does not share its endpoint is never offered
    inference components."""
    prof = profile(_SHARED_TINY)
    rec = evaluate(prof, ruleset)
    report = what_if_report(prof, ruleset)
    assert report.hosting_mode == rec.hosting.mode == "inference_components"
    assert report.usd_per_month_expected == rec.cost.usd_per_month_expected
    assert report.instances == rec.capacity.instances  # type: ignore[union-attr]
    (other,) = [e for e in report.what_if if e.change.startswith("hosting=")]
    priced = {r.mode for r in rec.hosting.rejected if "USD a month" in r.reason}
    assert other.hosting_mode in priced
    alone = copy.deepcopy(_SHARED_TINY)
    alone["workload"]["shares_endpoint"] = False  # type: ignore[index]
    modes = {e.hosting_mode for e in what_if_report(profile(alone), ruleset).what_if}
    assert "inference_components" not in modes


def test_every_hosting_note_closes_what_it_opens() -> None:
    """The mode counterfactual quotes the first clause of the other mode's cost basis whole (it was cut at a ';'
    inside a parenthesis, leaving it open)."""
    ruleset = compile_ruleset(load_ruleset(Path(__file__).resolve().parents[2] / "rules"))
    cases = yaml.safe_load((Path(__file__).resolve().parents[1] / "advice" / "cases" / "hosting.yaml").read_text())
    notes = []
    for case in cases["cases"]:
        try:
            report = what_if_report(profile(case["profile"]), ruleset)
        except ProfileRejected:
            continue
        notes += [w.note for w in report.what_if if w.change.startswith("hosting=")]
    assert any("serverless" in note for note in notes)
    for note in notes:
        assert note.count("(") == note.count(")"), note
