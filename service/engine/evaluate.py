"""``evaluate(profile, ruleset) -> Recommendation``: pure, deterministic, no I/O, no clock.

Tables run in a fixed order (family, sizing, scaling, availability, monitoring, advisories);
each sees the profile and the decisions of the tables before it. Arithmetic that rules cannot
express (instance fit, rate basis, counts, AWS payloads, cost) is done here, with the formula shown.
"""

from __future__ import annotations

import math

from service.contract import (
    Alternative,
    AvailabilityPlan,
    Capacity,
    InstanceChoice,
    Recommendation,
    RulesetRef,
    Warning,
    WorkloadProfile,
)
from service.contract.recommendation import Hosting, HostingAws, ThroughputBasis
from service.engine import aws_payloads as aws
from service.engine.capacity import fmt, spread
from service.engine.compiled import CompiledRuleset
from service.engine.core import Decision, ProfileRejected, decide, profile_facts
from service.engine.cost import cost_estimate
from service.engine.hosting_modes import Parts, adapt
from service.engine.llm_answer import apply_llm
from service.engine.monitoring import advisories, explain, monitoring
from service.engine.rollout import beyond_one_fleet
from service.engine.scaling_plan import scaling_plan
from service.engine.warnings import engine_warnings

__all__ = ["DEFAULT_ENDPOINT_NAME", "ProfileRejected", "evaluate", "profile_facts"]

DEFAULT_ENDPOINT_NAME = "my-endpoint"


def evaluate(profile: WorkloadProfile, ruleset: CompiledRuleset) -> Recommendation:
    """Recommend infrastructure for ``profile`` under ``ruleset``.

    Raises:
        ProfileRejected: the profile contradicts itself, or no rule or instance type can serve it.
    """
    decision = decide(profile, ruleset)
    profile = decision.profile or profile  # an LLM's profile with its request rates derived
    facts = decision.facts
    explanation = [
        explain(table, rule, facts)
        for table, rule in (
            ("family", decision.family_rule),
            ("sizing", decision.sizing_rule),
            ("scaling", decision.scaling_rule),
            ("availability", decision.availability_rule),
        )
    ]
    warnings: list[Warning] = []
    endpoint = profile.name or DEFAULT_ENDPOINT_NAME
    startup_s, startup_basis = _startup(profile, decision)
    hosting = _hosting(profile, decision, endpoint, startup_s, startup_basis, warnings)
    capacity = _capacity(profile, decision)
    scaling = scaling_plan(profile, decision, endpoint, startup_s, warnings)
    avail_rule = decision.availability_rule
    avail = avail_rule.then
    availability = AvailabilityPlan(
        multi_az=avail.multi_az,
        az_count=decision.az_count,
        survives_az_loss=avail.survives_az_loss,
        degraded_utilization=avail.degraded_utilization,
        rule_id=avail_rule.id,
        reason=avail_rule.because,
    )
    sla_ms, instance = profile.sla.latency_ms, decision.instance
    watch = monitoring(ruleset, facts, endpoint, sla_ms, instance, decision.per_instance_rps, explanation, warnings)
    advisories(ruleset, facts, explanation, warnings)
    warnings.extend(engine_warnings(profile, decision, capacity, startup_s))
    cost = cost_estimate(profile, decision, ruleset.catalog.as_of, ruleset.catalog.region, warnings)
    parts = Parts(hosting, capacity, scaling, availability, watch, cost)
    hosting_table = ruleset.source.tables.get("hosting")
    if hosting_table is not None:
        explanation.insert(0, explain("hosting", decision.hosting_rule, facts))  # type: ignore[arg-type]
        parts = adapt(profile, decision, hosting_table.limits, parts, warnings)
    parts, llm = apply_llm(decision, parts, endpoint, warnings)  # its scaling and alarms, before the rollout names them
    parts, deployment = beyond_one_fleet(profile, ruleset, decision, parts, explanation, warnings)
    return Recommendation(
        ruleset=RulesetRef(version=ruleset.version, sha256=ruleset.sha256),
        profile_name=profile.name,
        hosting=parts.hosting,
        instance=_instance_choice(decision) if decision.hosting_mode != "serverless" else None,
        capacity=parts.capacity,
        scaling=parts.scaling,
        availability=parts.availability,
        monitoring=parts.monitoring,
        cost=parts.cost,
        explanation=explanation,
        warnings=warnings,
        llm=llm,
        deployment=deployment,
    )


def _startup(profile: WorkloadProfile, decision: Decision) -> tuple[float, str]:
    """Warm-up of a new instance: the profile's, else the sizing rule's estimate from the model size."""
    if profile.workload.startup_s is not None:
        return profile.workload.startup_s, "profile"
    estimate = decision.sizing_rule.then.startup_estimate
    model = profile.workload.model_memory_gib or 0.0
    return round(estimate.base_s + estimate.per_gib_s * model, 1), "estimate"


def _hosting(
    profile: WorkloadProfile,
    decision: Decision,
    endpoint: str,
    startup_s: float,
    startup_basis: str,
    warnings: list[Warning],
) -> Hosting:
    instance = decision.instance
    model = profile.workload.model_memory_gib
    volume = max(1, min(512, math.ceil(model * 2))) if model is not None else None
    config, notes = aws.create_endpoint_config(
        endpoint,
        instance.type,
        decision.instances,
        startup_s,
        volume_size_supported=instance.volume_size_supported,
        volume_size_gib=volume,
    )
    warnings.extend(Warning(code="endpoint_config_adjusted", message=note) for note in notes)
    how = "as given in workload.startup_s" if startup_basis == "profile" else "an estimate from the model size"
    return Hosting(
        mode="real_time",
        reason="A real-time endpoint: a fleet of instances answering InvokeEndpoint synchronously. Warm-up "
        f"{fmt(startup_s)} s ({how}) sets the container timeouts, the scale-out cooldown and how early scheduled "
        "actions start.",
        startup_s=startup_s,
        startup_basis=startup_basis,  # type: ignore[arg-type]
        aws=HostingAws(create_endpoint_config=config),
    )


def _capacity(profile: WorkloadProfile, decision: Decision) -> Capacity:
    traffic = profile.traffic
    chosen = decision.selection.chosen
    rate, k = chosen.rps, decision.az_count
    peak, baseline, target = decision.peak, decision.baseline, decision.target
    instances = decision.instances
    per_az = spread(instances, k)
    after_loss = None
    if decision.multi_az:
        after_loss = round(traffic.rps_at_peak / ((instances - per_az[0]) * rate), 4)
    avail = decision.availability_rule.then
    min_why = (
        f"min {decision.min_capacity}: the plan at mean_rps {fmt(traffic.mean_rps)}"
        if traffic.mean_rps is not None
        else f"min {decision.min_capacity}: the plan at the peak (no mean_rps given)"
    ) + (", AZ-safe" if avail.survives_az_loss else "")
    factor = decision.scaling_rule.then.max_capacity_factor
    return Capacity(
        throughput_basis=ThroughputBasis(
            instance_type=chosen.instance.type,
            per_instance_rps=rate,
            source=chosen.source,  # type: ignore[arg-type]
            factor=round(chosen.factor, 6),
            tested_instance_type=chosen.measured_on.instance.type if chosen.measured_on else None,
        ),
        base_instances=peak.base,
        az_safe_instances=peak.az_safe,
        instances=instances,
        min_instances=decision.min_capacity,
        max_instances=decision.max_capacity,
        per_az=per_az,
        utilization_at_peak=round(traffic.rps_at_peak / (instances * rate), 4),
        utilization_at_peak_after_az_loss=after_loss,
        formula=f"instances at peak = max(min {decision.min_capacity}, ceil({fmt(traffic.peak_rps)} rps / target "
        f"{fmt(target.per_instance_rps)} rps)) = {instances} ({' + '.join(map(str, per_az))} across AZs)",
        steps=[
            *decision.selection.basis_steps,
            *peak.steps,
            *(baseline.steps if baseline is not peak else ()),
            f"floor = max(min_instances {avail.min_instances}, "
            f"{'1 per AZ x ' + str(k) if avail.multi_az else '1'}) = {decision.floor}",
            min_why,
            *target.steps,
            f"fleet at peak n({fmt(traffic.peak_rps)}) = {instances}; after losing the largest AZ "
            f"({per_az[0]}) {instances - per_az[0]} remain"
            + (f" at {fmt(after_loss)} of the basis rate" if after_loss is not None else ""),
            f"max {decision.max_capacity} = ceil({peak.instances} x {fmt(factor)})"
            + (f", rounded up to a multiple of {k}" if k > 1 else "")
            + ", at least the fleet at peak",
        ],
    )


def _instance_choice(decision: Decision) -> InstanceChoice:
    instance = decision.instance
    fit = decision.selection.chosen.fit
    accel = instance.accelerator
    return InstanceChoice(
        family=decision.family,  # type: ignore[arg-type]
        instance_type=instance.type,
        rule_id=decision.family_rule.id,
        reason=decision.family_rule.because,
        sizing_rule_id=decision.sizing_rule.id,
        vcpus=instance.vcpus,
        memory_gib=instance.memory_gib,
        accelerator=accel.name if accel else None,
        accelerator_count=accel.count if accel else 0,
        accelerator_memory_gib=accel.memory_gib if accel else 0.0,
        alternatives=[Alternative(instance_type=t, rejected_because=why) for t, why in decision.selection.alternatives],
        sharding=fit.sharding,  # type: ignore[arg-type]
        tensor_parallel_degree=fit.tp_degree,
    )
