"""What-if notes of inference-component plans say what the plan is, in agreement with the entry's own figures.

An inference-component plan is its copies, the shared instances they occupy (the entry's ``instances``) and the
model's reserved share of one instance per copy (its cost); its note must not describe a real-time fleet of its own.
The copies and instances a note names are checked against the entry, the report and, for the counterfactuals of
one input, the recommendation for the changed profile.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import msgspec
import pytest
from profiles import profile

from service.contract import WhatIf, WhatIfReport
from service.engine import CompiledRuleset, evaluate
from service.engine.cost import HOURS_PER_MONTH
from service.engine.whatif import what_if_report

IC = "inference_components"
_OCCUPIED = re.compile(
    r"(?P<copies>\d+) cop(?:y|ies)(?: \((?P<per_az_copies>[\d +]+) over (?P<k>\d+) AZs\)| in 1 AZ) on "
    r"(?P<instances>\d+) shared (?P<type>ml\.[\w.]+) instances?(?: \((?P<per_az>[\d +]+)\))?, "
    r"(?P<share>[\d.]+) of one reserved per copy"
)
_FLEET = re.compile(r"\b\d+ x ml\.")  # a fleet of its own: "3 x ml.c6i.large"


def _cpu(memory_gib: float, processing_s: float) -> dict[str, Any]:
    return {
        "bound": "cpu",
        "model_kind": "classic_ml",
        "model_memory_gib": memory_gib,
        "processing_s": processing_s,
        "shares_endpoint": True,
    }


PROFILES: dict[str, dict[str, Any]] = {
    # the advice case hosting::tiny-model-sharing-instances-wants-inference-components: 3 AZs, one copy in each
    "tiny-three-azs": {
        "name": "tiny-ranker",
        "workload": _cpu(0.2, 0.01),
        "traffic": {"peak_rps": 0.5, "per_instance_rps": 100, "burstiness": "steady"},
        "sla": {"p99_latency_ms": 100, "availability": 0.999},
    },
    # the memory sets the share (3/8 of an instance), a mean below the peak
    "rerank-with-mean": {
        "name": "search-rerank",
        "workload": _cpu(1, 0.02),
        "traffic": {"peak_rps": 40, "mean_rps": 10, "per_instance_rps": 100, "burstiness": "periodic"},
        "sla": {"p99_latency_ms": 150, "availability": 0.999},
    },
    # two AZs without AZ-loss sizing
    "two-azs": {
        "workload": _cpu(1.5, 0.2),
        "traffic": {"peak_rps": 0.2, "per_instance_rps": 20, "burstiness": "bursty"},
        "sla": {"p99_latency_ms": 2000, "availability": 0.99},
    },
    # one AZ: two copies on one instance; the cheapest other mode is a real-time fleet of its own
    "single-az": {
        "workload": _cpu(0.5, 2),
        "traffic": {"peak_rps": 0.5, "per_instance_rps": 5, "burstiness": "steady"},
        "sla": {"p99_latency_ms": 4000, "availability": 0.95},
    },
    # asynchronous inference is chosen; its cheapest other mode is an inference component
    "asynchronous-to-components": {
        "workload": _cpu(0.5, 2),
        "traffic": {"peak_rps": 0.5, "per_instance_rps": 5, "burstiness": "steady"},
        "sla": {"p99_latency_ms": 4000, "availability": 0.999, "delivery": "async_ok"},
    },
}


def _occupied(note: str) -> list[dict[str, Any]]:
    """Each description of copies on shared instances in ``note``, in order (the decision's first, where both)."""
    found = []
    for m in _OCCUPIED.finditer(note):
        k = int(m["k"] or 1)
        found.append(
            {
                "copies": int(m["copies"]),
                "instances": int(m["instances"]),
                "type": m["type"],
                "share": float(m["share"]),
                "per_az_copies": [int(n) for n in m["per_az_copies"].split("+")] if m["per_az_copies"] else None,
                "per_az": [int(n) for n in m["per_az"].split("+")] if m["per_az"] else None,
                "k": k,
            }
        )
    return found


def _agrees(said: dict[str, Any], instances: int | None, instance_type: str | None) -> None:
    assert said["instances"] == instances and said["type"] == instance_type, said
    if said["k"] > 1:
        assert len(said["per_az_copies"]) == len(said["per_az"]) == said["k"], said
        assert sum(said["per_az_copies"]) == said["copies"] and sum(said["per_az"]) == said["instances"], said
    else:
        assert said["per_az"] is None and said["per_az_copies"] is None, said
    assert 1 <= said["instances"] <= said["copies"], said  # each instance holds at least one of the copies
    assert 0 < said["share"] <= 1, said


def _cost_agrees(said: dict[str, Any], usd_per_month_expected: float, ruleset: CompiledRuleset) -> None:
    """Without mean_rps the copies at the peak run all month: copies x share x price x hours."""
    price = ruleset.instance_types[said["type"]].usd_per_hour
    assert said["copies"] * said["share"] * price * HOURS_PER_MONTH == pytest.approx(
        usd_per_month_expected, rel=1e-3, abs=0.02
    ), said


def _changed(data: dict[str, Any], change: str) -> dict[str, Any] | None:
    """The profile of an ``az_count`` or ``target_utilization`` counterfactual (None for the others)."""
    name, _, value = change.partition("=")
    if name not in ("az_count", "target_utilization"):
        return None
    changed = copy.deepcopy(data)
    changed[name] = int(value) if name == "az_count" else float(value)
    return changed


def _check_entry(
    data: dict[str, Any], report: WhatIfReport, entry: WhatIf, ruleset: CompiledRuleset
) -> dict[str, Any] | None:
    """What the entry's note says its component plan occupies, checked against its figures (None: not a component
    plan, and the decision is not one either)."""
    said = _occupied(entry.note)
    base_ic, entry_ic = report.hosting_mode == IC, entry.hosting_mode == IC
    if entry.hosting_mode != report.hosting_mode and (base_ic or entry_ic):
        assert f"{report.hosting_mode}: " in entry.note and f" -> {entry.hosting_mode}: " in entry.note, entry.note
    if base_ic:
        assert said, f"{entry.change}: the note does not say what the decision's copies occupy: {entry.note}"
        _agrees(said[0], report.instances, report.instance_type)
    if not entry_ic:
        if base_ic and entry.instances is not None:
            assert f"-> {entry.hosting_mode}: {entry.instances} x {entry.instance_type} (" in entry.note, entry.note
        return None
    assert said, f"{entry.change}: the note does not say what the plan's copies occupy: {entry.note}"
    if base_ic:
        assert not _FLEET.search(entry.note), f"{entry.change}: a component plan described as a fleet: {entry.note}"
    _agrees(said[-1], entry.instances, entry.instance_type)
    if "mean_rps" not in data["traffic"]:
        _cost_agrees(said[-1], entry.usd_per_month_expected, ruleset)
    return said[-1]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_component_notes_state_the_copies_and_instances_of_the_entry(name: str, ruleset: CompiledRuleset) -> None:
    data = PROFILES[name]
    report = what_if_report(profile(data), ruleset)
    components = [e for e in report.what_if if IC in (e.hosting_mode, report.hosting_mode)]
    assert components, "the profile gives no inference-component plan to check"
    for entry in components:
        said = _check_entry(data, report, entry, ruleset)
        changed = _changed(data, entry.change)
        if said is None or changed is None:
            continue
        rec = evaluate(profile(changed), ruleset)  # the same counterfactual as a recommendation
        component = rec.hosting.aws.create_inference_component if rec.hosting.aws is not None else None
        assert rec.hosting.mode == IC and component is not None and rec.capacity is not None
        assert said["copies"] == msgspec.to_builtins(component)["RuntimeConfig"]["CopyCount"], entry.note
        assert said["instances"] == rec.capacity.instances, entry.note
        assert said["per_az"] in (None, rec.capacity.per_az), entry.note


def test_a_decision_of_components_describes_its_copies_in_every_note(ruleset: CompiledRuleset) -> None:
    """Each note of a component decision names what its copies occupy (with the changed plan, or ``either way``),
    and its first description is the decision's own, as the report states it."""
    report = what_if_report(profile(PROFILES["tiny-three-azs"]), ruleset)
    assert report.hosting_mode == IC
    kinds = {e.change.split("=")[0] for e in report.what_if}
    assert {"az_count", "target_utilization", "family", "generation", "hosting"} <= kinds
    rec = evaluate(profile(PROFILES["tiny-three-azs"]), ruleset)
    component = rec.hosting.aws.create_inference_component if rec.hosting.aws is not None else None
    assert component is not None
    for entry in report.what_if:
        own = _occupied(entry.note)[0]
        assert own["copies"] == msgspec.to_builtins(component)["RuntimeConfig"]["CopyCount"] == 3
        assert (own["instances"], own["share"]) == (report.instances, 0.125)
        assert "either way" in entry.note or " -> " in entry.note, entry.note
