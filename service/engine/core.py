"""The decisions themselves, without their presentation.

``decide`` picks the rules, the instance type and the counts; ``evaluate`` adds the payloads,
alarms, formulas and prose around them. Impact analysis replays audit history through
``decide`` alone, which is several times cheaper than a full evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.contract import Traffic, WorkloadProfile
from service.engine.capacity import CapacityPlan, ScalingTarget, fmt, plan_capacity, scaling_target
from service.engine.compiled import CompiledRule, CompiledRuleset
from service.engine.errors import ProfileRejected
from service.engine.fit import accelerator_of
from service.engine.llm_profile import LlmInputs, prepare
from service.engine.llm_sizing import LlmPlan, select_llm_instance
from service.engine.profile_figures import peak_instances, processing_s
from service.engine.selection import Selection, measurements, model_sharding, select_instance
from service.rulebook.models import CatalogInstance, SizingOutcome

__all__ = ["Decision", "ProfileRejected", "decide", "peak_instances", "processing_s", "profile_facts"]

# Sizes at which a model's size must be stated: what the fit is decided on.
_SIZE_REQUIRED_BOUNDS = ("gpu", "memory")


@dataclass(frozen=True, slots=True)
class Decision:
    """What was decided, by which rules; ``facts`` holds every input and decision rules saw.

    ``peak`` is the static plan at the peak (base, AZ-safe and floor counts); ``baseline`` the same
    at the baseline load (mean_rps, else the peak), whose count is the scalable target's minimum;
    ``target`` the per-instance load the policies aim at; ``instances`` the fleet they settle at
    under the peak.
    """

    facts: dict[str, Any]
    family_rule: CompiledRule
    sizing_rule: CompiledRule
    scaling_rule: CompiledRule
    availability_rule: CompiledRule
    selection: Selection
    utilization: float
    az_count: int
    floor: int
    peak: CapacityPlan
    baseline: CapacityPlan
    max_capacity: int
    target: ScalingTarget
    instances: int  # the fleet the policies settle at under the peak: n(peak_rps)
    hosting_rule: CompiledRule | None = None  # None: a ruleset without a hosting table (real-time only)
    profile: WorkloadProfile | None = None  # an LLM's (workload.llm) in the request units it was sized on
    llm_inputs: LlmInputs | None = None
    llm_plan: LlmPlan | None = None

    @property
    def hosting_mode(self) -> str:
        return str(self.facts["decision.hosting_mode"])

    @property
    def instance(self) -> CatalogInstance:
        return self.selection.chosen.instance

    @property
    def instance_index(self) -> int:
        return self.selection.index

    @property
    def per_instance_rps(self) -> float:
        return self.selection.chosen.rps

    @property
    def family(self) -> str:
        return str(self.facts["decision.family"])

    @property
    def scaling_method(self) -> str:
        return str(self.scaling_rule.then.method)

    @property
    def multi_az(self) -> bool:
        return bool(self.availability_rule.then.multi_az)

    @property
    def min_capacity(self) -> int:
        return self.target.min_instances

    @property
    def usd_per_hour(self) -> float:
        return self.instances * self.instance.usd_per_hour


def profile_facts(profile: WorkloadProfile) -> dict[str, Any]:
    """The flat facts rules test (see service.rulebook.fields)."""
    w, t, s = profile.workload, profile.traffic, profile.sla
    work = processing_s(profile)
    sizes = [k for k in (w.payload_kib, w.response_kib) if k is not None]
    return {
        "workload.processing_s": work,
        "workload.largest_payload_kib": max(sizes) if sizes else None,
        "workload.concurrency_peak": t.rps_at_peak * work if work is not None else None,
        "workload.concurrency_mean": (t.mean_rps or t.rps_at_peak) * work if work is not None else None,
        "workload.shares_endpoint": w.shares_endpoint,
        "traffic.peak_instances": peak_instances(profile),
        "sla.delivery": s.delivery,
        "sla.cold_start_ok": s.cold_start_ok,
        "workload.bound": w.bound,
        "workload.model_kind": w.model_kind,
        "workload.model_memory_gib": w.model_memory_gib,
        "workload.pipeline_steps": w.pipeline_steps,
        "traffic.peak_rps": t.peak_rps,
        "traffic.per_instance_rps": t.per_instance_rps,
        "workload.sharding": model_sharding(profile),
        "traffic.mean_rps": t.mean_rps,
        "traffic.peak_to_mean": t.rps_at_peak / t.mean_rps if t.mean_rps else None,
        "traffic.burstiness": t.burstiness,
        "traffic.peak_window_count": len(t.peak_windows or ()),
        "sla.p99_latency_ms": s.p99_latency_ms,
        "sla.availability": s.availability,
        "target_utilization": profile.target_utilization,
        "priority": profile.priority,
        "az_count": profile.az_count,
    }


def decide(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    *,
    explain: bool = True,
    family_override: str | None = None,
    instance_override: str | None = None,
) -> Decision:
    """Run the decision tables, pick the instance type and compute the fleet.

    ``family_override`` and ``instance_override`` replace the family table's answer and the type choice
    (what-if counterfactuals); every other rule decides as usual. Raises ProfileRejected when the profile
    contradicts itself, or no rule or instance type can serve it.
    """
    profile, llm_inputs = prepare(profile, ruleset)
    _check_consistency(profile)
    facts = profile_facts(profile)
    hosting_rule = _hosting(ruleset, facts, profile)
    family_rule = _first(ruleset, "family", facts)
    facts["decision.family"] = family = family_override or family_rule.then.family
    sizing_rule = _first(ruleset, "sizing", facts)
    sizing = sizing_rule.then
    utilization = _utilization(profile, sizing.max_target_utilization)
    scaling_rule = _first(ruleset, "scaling", facts)
    facts["decision.scaling_method"] = scaling_rule.then.method
    availability_rule = _first(ruleset, "availability", facts)
    avail = availability_rule.then
    az_count, floor = _az_layout(profile, availability_rule)

    def fleet_for(rate: float) -> int:
        return _plan(
            facts, availability_rule, rate, utilization, az_count, floor, profile.traffic.rps_at_peak, False
        ).instances

    mode = str(facts["decision.hosting_mode"])
    choice = (family, sizing, utilization, instance_override, mode)
    selection, llm_plan = _selection(profile, ruleset, llm_inputs, choice, fleet_for)
    facts["decision.family"] = selection.chosen.instance.family
    rate = selection.chosen.rps
    traffic = profile.traffic
    peak, baseline, max_capacity, target = _fleet(
        facts, availability_rule, scaling_rule, rate, utilization, (az_count, floor), traffic, explain
    )
    decision = Decision(
        facts,
        family_rule,
        sizing_rule,
        scaling_rule,
        availability_rule,
        selection,
        utilization,
        az_count,
        floor,
        peak,
        baseline,
        max_capacity,
        target,
        target.instances_for(traffic.rps_at_peak),
        hosting_rule,
        profile if llm_inputs is not None else None,
        llm_inputs,
        llm_plan,
    )
    facts["decision.multi_az"] = avail.multi_az
    facts["decision.instances"] = decision.instances
    facts["decision.min_instances"] = decision.min_capacity
    facts["decision.accelerator"] = accelerator_of(decision.instance)
    return decision


def _selection(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    llm_inputs: LlmInputs | None,
    choice: tuple[str, SizingOutcome, float, str | None, str],
    fleet_for: Callable[[float], int],
) -> tuple[Selection, LlmPlan | None]:
    family, sizing, utilization, only_type, mode = choice  # the type and its rate basis (an LLM's in streams)
    if llm_inputs is None:
        return select_instance(profile, ruleset, family, sizing, utilization, fleet_for, only_type, mode), None
    tests = measurements(profile, ruleset) if profile.load_tests else []
    restrict = (only_type, mode, sizing.host_memory_headroom)
    return select_llm_instance(profile, ruleset, llm_inputs, tests, fleet_for, restrict)


def _fleet(
    facts: dict[str, Any],
    availability_rule: CompiledRule,
    scaling_rule: CompiledRule,
    rate: float,
    utilization: float,
    layout: tuple[int, int],
    traffic: Traffic,
    explain: bool,
) -> tuple[CapacityPlan, CapacityPlan, int, ScalingTarget]:
    """The static plans at the peak and the baseline, MaxCapacity, and the scaling target."""
    az_count, floor = layout
    peak = _plan(facts, availability_rule, rate, utilization, az_count, floor, traffic.rps_at_peak, explain)
    baseline = (
        _plan(facts, availability_rule, rate, utilization, az_count, floor, traffic.mean_rps, explain)
        if traffic.mean_rps is not None
        else peak
    )
    factor = scaling_rule.then.max_capacity_factor
    max_capacity = _round_up(max(peak.instances, math.ceil(peak.instances * factor)), az_count)
    target, max_capacity = _target(
        rate, utilization, az_count, availability_rule, baseline, peak, max_capacity, traffic.rps_at_peak
    )
    return peak, baseline, max_capacity, target


def _utilization(profile: WorkloadProfile, cap: float | None) -> float:
    """The profile's target utilisation, capped by the sizing rule's (latency first plans lower)."""
    return profile.target_utilization if cap is None else min(profile.target_utilization, cap)


def _az_layout(profile: WorkloadProfile, availability_rule: CompiledRule) -> tuple[int, int]:
    """AZ count (the profile's, where the plan is multi-AZ) and the instance floor (at least one per AZ)."""
    avail = availability_rule.then
    az_count = (profile.az_count or avail.az_count) if avail.multi_az else 1
    return az_count, max(avail.min_instances, az_count if avail.multi_az else 1)


def _target(
    rate: float,
    utilization: float,
    az_count: int,
    availability_rule: CompiledRule,
    baseline: CapacityPlan,
    peak: CapacityPlan,
    max_capacity: int,
    peak_rps: float,
) -> tuple[ScalingTarget, int]:
    """The scaling target, and a max that holds the fleet it settles at under the peak.

    The target keeps every fleet size from min up to a bound AZ-safe: max, or (az_safe_up_to:
    peak) the fleet at the peak. Both bounds depend on the target, so it is recomputed until
    they hold; the worst size is min or the first size past a multiple of k above it, so this
    settles in two or three rounds.
    """
    avail = availability_rule.then
    up_to_peak = avail.az_safe_up_to == "peak"
    upper = peak.instances if up_to_peak else max_capacity
    for _ in range(4):
        target = scaling_target(
            per_instance_rps=rate,
            target_utilization=utilization,
            az_count=az_count,
            survives_az_loss=avail.survives_az_loss,
            degraded_utilization=avail.degraded_utilization,
            min_instances=baseline.instances,
            max_instances=upper,
        )
        at_peak = target.instances_for(peak_rps)
        max_capacity = max(max_capacity, _round_up(at_peak, az_count))
        bound = at_peak if up_to_peak else max_capacity
        if bound <= upper:
            break
        upper = bound
    return target, max_capacity


def _round_up(n: int, multiple: int) -> int:
    return n if multiple <= 1 or n % multiple == 0 else n + multiple - n % multiple


def _plan(
    facts: dict[str, Any],
    availability_rule: CompiledRule,
    rate: float,
    utilization: float,
    az_count: int,
    floor: int,
    rps: float,
    explain: bool,
) -> CapacityPlan:
    avail = availability_rule.then
    return plan_capacity(
        rps=rps,
        per_instance_rps=rate,
        target_utilization=utilization,
        az_count=az_count,
        survives_az_loss=avail.survives_az_loss,
        degraded_utilization=avail.degraded_utilization,
        floor=floor,
        explain=explain,
    )


def _check_consistency(profile: WorkloadProfile) -> None:
    w, t = profile.workload, profile.traffic
    if w.model_memory_gib is None and (w.bound in _SIZE_REQUIRED_BOUNDS or w.model_kind == "llm"):
        raise ProfileRejected(
            "model-size-required",
            f"workload.model_memory_gib is required when bound is {w.bound} and model_kind is {w.model_kind}: "
            "the instance type is chosen by what holds the model.",
            "workload.model_memory_gib",
        )
    if t.mean_rps is not None and t.mean_rps > t.rps_at_peak:
        raise ProfileRejected(
            "mean-above-peak",
            f"traffic.mean_rps ({fmt(t.mean_rps)}) is above traffic.peak_rps ({fmt(t.peak_rps)}).",
            "traffic.mean_rps",
        )
    for i, window in enumerate(t.peak_windows or ()):
        if window.rps > t.rps_at_peak:
            raise ProfileRejected(
                "window-above-peak",
                f"traffic.peak_windows[{i}].rps ({fmt(window.rps)}) is above "
                f"traffic.peak_rps ({fmt(t.peak_rps)}), which must be the overall peak.",
                f"traffic.peak_windows[{i}].rps",
            )


def _hosting(ruleset: CompiledRuleset, facts: dict[str, Any], profile: WorkloadProfile) -> CompiledRule | None:
    """The hosting table's rule (none in rulesets without the table: real-time); a refusal raises ProfileRejected."""
    if "hosting" not in ruleset.tables:
        facts["decision.hosting_mode"] = "real_time"
        return None
    rule = _first(ruleset, "hosting", facts)
    then = rule.then
    if then.refuse is not None:
        field = then.field
        if field == "workload.largest_payload_kib":  # name the size that breaks the limit
            w = profile.workload
            field = "workload.response_kib" if (w.response_kib or 0) > (w.payload_kib or 0) else "workload.payload_kib"
        value = profile_value(profile, field)
        if field == "workload.processing_s" and profile.workload.processing_s is None:
            field = "load_tests"  # the time is the largest load-tested p99
            value = f"p99 {fmt(facts['workload.processing_s'])} s as workload.processing_s"
        raise ProfileRejected(then.refuse, f"{field} {value}: {rule.because.strip()}", field, rule.id)
    facts["decision.hosting_mode"] = then.mode
    return rule


def profile_value(profile: WorkloadProfile, field: str | None) -> str:
    """The value of a dotted ``workload.*`` or ``sla.*`` field as text (for messages)."""
    if field is None:
        return ""
    section, _, name = field.partition(".")
    value = getattr(getattr(profile, section, None), name, None)
    return fmt(value) if isinstance(value, float | int) and not isinstance(value, bool) else str(value)


def _first(ruleset: CompiledRuleset, table_name: str, facts: dict[str, Any]) -> CompiledRule:
    rule = ruleset.tables[table_name].first(facts)  # type: ignore[index]
    if rule is None:
        raise ProfileRejected(
            "no-rule-matched",
            f"no rule of table '{table_name}' in ruleset {ruleset.version} "
            "matches this profile; `advisor rules check` reports such gaps.",
        )
    return rule
