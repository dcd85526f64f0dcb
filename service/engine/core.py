"""The decisions themselves, without their presentation.

``decide`` picks the rules, the instance type and the counts; ``evaluate`` adds the payloads,
alarms, formulas and prose around them. Impact analysis replays audit history through
``decide`` alone, which is several times cheaper than a full evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.contract import WorkloadProfile
from service.engine.capacity import CapacityPlan, fmt, plan_capacity
from service.engine.compiled import CompiledRule, CompiledRuleset
from service.rulebook.models import CatalogInstance, SizingOutcome

__all__ = ["Decision", "ProfileRejected", "capacity_gib", "decide", "profile_facts"]


class ProfileRejected(Exception):
    """The profile is valid in shape but impossible to advise on (answered as 422)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


@dataclass(frozen=True, slots=True)
class Decision:
    """What was decided, by which rules; ``facts`` holds every input and decision rules saw."""

    facts: dict[str, Any]
    family_rule: CompiledRule
    sizing_rule: CompiledRule
    scaling_rule: CompiledRule
    availability_rule: CompiledRule
    instance: CatalogInstance
    instance_index: int  # position in the family's cheapest-first list
    az_count: int
    floor: int
    peak: CapacityPlan

    @property
    def family(self) -> str:
        return str(self.family_rule.then.family)

    @property
    def scaling_method(self) -> str:
        return str(self.scaling_rule.then.method)

    @property
    def multi_az(self) -> bool:
        return bool(self.availability_rule.then.multi_az)

    @property
    def instances(self) -> int:
        return self.peak.instances

    @property
    def usd_per_hour(self) -> float:
        return self.peak.instances * self.instance.usd_per_hour

    def plan(self, rps: float, *, explain: bool = True) -> CapacityPlan:
        """Capacity for another load level under the same decisions (baseline, peak windows)."""
        traffic, avail = self.facts, self.availability_rule.then
        return plan_capacity(
            rps=rps,
            per_instance_rps=traffic["traffic.per_instance_rps"],
            target_utilization=traffic["target_utilization"],
            az_count=self.az_count,
            survives_az_loss=avail.survives_az_loss,
            degraded_utilization=avail.degraded_utilization,
            floor=self.floor,
            explain=explain,
        )


def profile_facts(profile: WorkloadProfile) -> dict[str, Any]:
    """The flat facts rules test (see service.rulebook.fields)."""
    w, t, s = profile.workload, profile.traffic, profile.sla
    return {
        "workload.bound": w.bound,
        "workload.model_kind": w.model_kind,
        "workload.model_memory_gib": w.model_memory_gib,
        "workload.pipeline_steps": w.pipeline_steps,
        "traffic.peak_rps": t.peak_rps,
        "traffic.per_instance_rps": t.per_instance_rps,
        "traffic.mean_rps": t.mean_rps,
        "traffic.peak_to_mean": t.peak_rps / t.mean_rps if t.mean_rps else None,
        "traffic.burstiness": t.burstiness,
        "traffic.peak_window_count": len(t.peak_windows or ()),
        "sla.p99_latency_ms": s.p99_latency_ms,
        "sla.availability": s.availability,
        "target_utilization": profile.target_utilization,
        "priority": profile.priority,
        "az_count": profile.az_count,
    }


def decide(profile: WorkloadProfile, ruleset: CompiledRuleset, *, explain: bool = True) -> Decision:
    """Run the decision tables and the capacity arithmetic.

    Raises:
        ProfileRejected: the profile contradicts itself, or no rule or instance type can serve it.
    """
    _check_consistency(profile)
    facts = profile_facts(profile)
    family_rule = _first(ruleset, "family", facts)
    facts["decision.family"] = family = family_rule.then.family
    sizing_rule = _first(ruleset, "sizing", facts)
    index, instance = _fit(profile, ruleset, family, sizing_rule.then)
    scaling_rule = _first(ruleset, "scaling", facts)
    facts["decision.scaling_method"] = scaling_rule.then.method
    availability_rule = _first(ruleset, "availability", facts)
    avail = availability_rule.then
    az_count = (profile.az_count or avail.az_count) if avail.multi_az else 1
    floor = max(avail.min_instances, az_count if avail.multi_az else 1)
    peak = plan_capacity(
        rps=profile.traffic.peak_rps,
        per_instance_rps=profile.traffic.per_instance_rps,
        target_utilization=profile.target_utilization,
        az_count=az_count,
        survives_az_loss=avail.survives_az_loss,
        degraded_utilization=avail.degraded_utilization,
        floor=floor,
        explain=explain,
    )
    facts["decision.multi_az"] = avail.multi_az
    facts["decision.instances"] = peak.instances
    return Decision(
        facts, family_rule, sizing_rule, scaling_rule, availability_rule, instance, index, az_count, floor, peak
    )


def _check_consistency(profile: WorkloadProfile) -> None:
    t = profile.traffic
    if t.mean_rps is not None and t.mean_rps > t.peak_rps:
        raise ProfileRejected(
            "mean_above_peak",
            f"traffic.mean_rps ({fmt(t.mean_rps)}) is above traffic.peak_rps ({fmt(t.peak_rps)}).",
            "traffic.mean_rps",
        )
    for i, window in enumerate(t.peak_windows or ()):
        if window.rps > t.peak_rps:
            raise ProfileRejected(
                "window_above_peak",
                f"traffic.peak_windows[{i}].rps ({fmt(window.rps)}) is above "
                f"traffic.peak_rps ({fmt(t.peak_rps)}), which must be the overall peak.",
                f"traffic.peak_windows[{i}].rps",
            )


def _first(ruleset: CompiledRuleset, table_name: str, facts: dict[str, Any]) -> CompiledRule:
    rule = ruleset.tables[table_name].first(facts)  # type: ignore[index]
    if rule is None:
        raise ProfileRejected(
            "no_rule_matched",
            f"no rule of table '{table_name}' in ruleset {ruleset.version} "
            "matches this profile; `advisor rules check` reports such gaps.",
        )
    return rule


def capacity_gib(instance: CatalogInstance, fit_on: str) -> float:
    """Memory that must hold the model: the accelerators' together, or the host's."""
    accel = instance.accelerator
    if fit_on == "accelerator_memory" and accel is not None:
        return accel.memory_gib * accel.count
    return instance.memory_gib


def _fit(
    profile: WorkloadProfile, ruleset: CompiledRuleset, family: str, sizing: SizingOutcome
) -> tuple[int, CatalogInstance]:
    """The smallest (cheapest) type of the family that holds the model with headroom.

    Smaller instances win because more, smaller instances spread over AZs lose less capacity
    when one fails (scale out, not up).
    """
    candidates = ruleset.by_family.get(family, ())
    if not candidates:
        raise ProfileRejected(
            "family_not_in_catalog",
            f"the catalog of ruleset {ruleset.version} has no instance type of family '{family}'.",
        )
    need = (profile.workload.model_memory_gib or 0.0) * sizing.memory_headroom
    for index, inst in enumerate(candidates):
        if capacity_gib(inst, sizing.fit_on) >= need:
            return index, inst
    what = "accelerator memory" if sizing.fit_on == "accelerator_memory" else "memory"
    largest = max(capacity_gib(i, sizing.fit_on) for i in candidates)
    raise ProfileRejected(
        "model_does_not_fit",
        f"no instance type of family '{family}' holds {fmt(need)} GiB of "
        f"{what} (the largest has {fmt(largest)} GiB); shard the model or lower "
        "workload.model_memory_gib.",
        "workload.model_memory_gib",
    )
