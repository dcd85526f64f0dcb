"""``evaluate(profile, ruleset) -> Recommendation``: pure, deterministic, no I/O, no clock.

Tables run in a fixed order (family, sizing, scaling, availability, monitoring, advisories);
each sees the profile and the decisions of the tables before it. Arithmetic that rules cannot
express (instance fit, counts, AWS payloads, cost) is done here, with the formula shown.
"""

from __future__ import annotations

import math
from typing import Any

from service.contract import (
    Alternative,
    AvailabilityPlan,
    AwsScaling,
    Capacity,
    CostEstimate,
    ExplanationEntry,
    InstanceChoice,
    Monitoring,
    MonitoringRationale,
    MonitoringTool,
    Recommendation,
    RulesetRef,
    ScalingPlan,
    UnavailableMethod,
    Warning,
    WorkloadProfile,
)
from service.contract.aws import MetricAlarm, ScalingPolicy, ScheduledAction
from service.engine import aws_payloads as aws
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRule, CompiledRuleset
from service.engine.core import Decision, ProfileRejected, capacity_gib, decide, profile_facts
from service.rulebook.models import CatalogInstance, ScalingOutcome, SizingOutcome

__all__ = ["DEFAULT_ENDPOINT_NAME", "ProfileRejected", "evaluate", "profile_facts"]

DEFAULT_ENDPOINT_NAME = "my-endpoint"
HOURS_PER_MONTH = 730  # AWS pricing convention
MAX_LARGER_ALTERNATIVES = 2

PREDICTIVE_UNAVAILABLE = UnavailableMethod(
    method="predictive",
    reason="Application Auto Scaling supports PredictiveScaling only for Amazon ECS, not for SageMaker "
    "variants; known peaks are covered by scheduled actions over target tracking instead.",
)


def evaluate(profile: WorkloadProfile, ruleset: CompiledRuleset) -> Recommendation:
    """Recommend infrastructure for ``profile`` under ``ruleset``.

    Raises:
        ProfileRejected: the profile contradicts itself, or no rule or instance type can serve it.
    """
    decision = decide(profile, ruleset)
    facts = decision.facts
    explanation = [
        _explain(table, rule, facts)
        for table, rule in (
            ("family", decision.family_rule),
            ("sizing", decision.sizing_rule),
            ("scaling", decision.scaling_rule),
            ("availability", decision.availability_rule),
        )
    ]
    warnings: list[Warning] = []
    endpoint = profile.name or DEFAULT_ENDPOINT_NAME
    traffic = profile.traffic
    family_rule, sizing_rule, scaling_rule = decision.family_rule, decision.sizing_rule, decision.scaling_rule
    avail_rule = decision.availability_rule
    family = decision.family
    instance = decision.instance
    alternatives = _alternatives(profile, ruleset, decision)
    scaling: ScalingOutcome = scaling_rule.then
    avail = avail_rule.then
    az_count, floor = decision.az_count, decision.floor
    if profile.az_count and not avail.multi_az:
        warnings.append(
            Warning(
                code="az_count_ignored",
                rule_id=avail_rule.id,
                message=f"az_count {profile.az_count} was given, but rule '{avail_rule.id}' "
                "plans a single-AZ deployment for this availability objective.",
            )
        )
    plan = decision.plan
    peak = decision.peak
    instances = peak.instances

    # The floor of the scalable target. Without a known quieter baseline, or when the plan promises
    # to survive an AZ loss at any time (static stability: never count on scaling out during an AZ
    # event), it stays at the peak count; with a baseline it may fall to what the baseline needs.
    baseline = plan(traffic.mean_rps) if traffic.mean_rps is not None else peak
    if scaling.method == "scheduled" or not avail.survives_az_loss:
        min_capacity = baseline.instances
    else:
        min_capacity = instances
    max_capacity = _round_up(max(instances, math.ceil(instances * scaling.max_capacity_factor)), az_count)
    min_reason = (
        f"min {min_capacity}: capacity for mean_rps {fmt(traffic.mean_rps or 0)}"
        if min_capacity < instances
        else f"min {min_capacity}: the peak count is the floor"
        + (" (static stability across AZs)" if avail.survives_az_loss else " (no mean_rps given)")
    )

    scaling_plan = _scaling_plan(profile, endpoint, scaling_rule, min_capacity, max_capacity, plan, warnings)

    after_loss = None
    if avail.multi_az:
        remaining = instances - max(peak.per_az)
        after_loss = round(traffic.peak_rps / (remaining * traffic.per_instance_rps), 4)
    capacity = Capacity(
        base_instances=peak.base,
        az_safe_instances=peak.az_safe,
        instances=instances,
        min_instances=min_capacity,
        max_instances=max_capacity,
        per_az=peak.per_az,
        utilization_at_peak=round(traffic.peak_rps / (instances * traffic.per_instance_rps), 4),
        utilization_at_peak_after_az_loss=after_loss,
        formula=peak.formula,
        steps=[
            *peak.steps,
            f"floor = max(min_instances {avail.min_instances}, "
            f"{'1 per AZ x ' + str(az_count) if avail.multi_az else '1'}) = {floor}",
            min_reason,
            f"max {max_capacity} = ceil({instances} x {fmt(scaling.max_capacity_factor)})"
            + (f", rounded up to a multiple of {az_count}" if az_count > 1 else ""),
        ],
    )

    availability = AvailabilityPlan(
        multi_az=avail.multi_az,
        az_count=az_count,
        survives_az_loss=avail.survives_az_loss,
        degraded_utilization=avail.degraded_utilization,
        rule_id=avail_rule.id,
        reason=avail_rule.because,
    )

    monitoring = _monitoring(ruleset, facts, endpoint, profile, instance, explanation, warnings)
    _advisories(ruleset, facts, explanation, warnings)
    if instances == 1 and profile.sla.availability >= 0.99:
        warnings.append(
            Warning(
                code="single_instance",
                message="One instance cannot meet an availability "
                "objective of 99% or more: SageMaker's SLA covers only endpoints with 2 or more "
                "instances.",
            )
        )

    rps_basis = traffic.mean_rps if traffic.mean_rps is not None else traffic.peak_rps
    per_hour = instances * instance.usd_per_hour
    cost = CostEstimate(
        usd_per_hour=round(per_hour, 4),
        usd_per_month=round(per_hour * HOURS_PER_MONTH, 2),
        usd_per_million_requests=round(per_hour / (rps_basis * 3600) * 1_000_000, 4),
        price_as_of=ruleset.catalog.as_of,
        region=ruleset.catalog.region,
        basis=f"{instances} x {instance.type} at the illustrative list price of {ruleset.catalog.as_of}; "
        f"per million requests at {'mean' if traffic.mean_rps is not None else 'peak'} traffic",
        formula=f"{instances} x {fmt(instance.usd_per_hour)} USD/h = {fmt(per_hour)} USD/h; "
        f"x {HOURS_PER_MONTH} h/month; / ({fmt(rps_basis)} rps x 3600) x 1e6",
    )

    accel = instance.accelerator
    return Recommendation(
        ruleset=RulesetRef(version=ruleset.version, sha256=ruleset.sha256),
        profile_name=profile.name,
        instance=InstanceChoice(
            family=family,  # type: ignore[arg-type]
            instance_type=instance.type,
            rule_id=family_rule.id,
            reason=family_rule.because,
            sizing_rule_id=sizing_rule.id,
            vcpus=instance.vcpus,
            memory_gib=instance.memory_gib,
            accelerator=accel.name if accel else None,
            accelerator_count=accel.count if accel else 0,
            accelerator_memory_gib=accel.memory_gib if accel else 0.0,
            alternatives=alternatives,
        ),
        capacity=capacity,
        scaling=scaling_plan,
        availability=availability,
        monitoring=monitoring,
        cost=cost,
        explanation=explanation,
        warnings=warnings,
    )


# ---------------------------------------------------------------- steps


def _explain(table: str, rule: CompiledRule, facts: dict[str, Any]) -> ExplanationEntry:
    return ExplanationEntry(table=table, rule_id=rule.id, matched=rule.matched(facts), outcome=rule.outcome)


def _alternatives(profile: WorkloadProfile, ruleset: CompiledRuleset, decision: Decision) -> list[Alternative]:
    """The smaller types that could not hold the model, and the next larger ones, with why not."""
    sizing: SizingOutcome = decision.sizing_rule.then
    candidates = ruleset.by_family[decision.family]
    index = decision.instance_index
    what = "accelerator memory" if sizing.fit_on == "accelerator_memory" else "memory"
    need = (profile.workload.model_memory_gib or 0.0) * sizing.memory_headroom
    smaller = [
        Alternative(
            instance_type=inst.type,
            rejected_because=f"holds {fmt(capacity_gib(inst, sizing.fit_on))} GiB of {what}; "
            f"the model needs {fmt(need)} GiB ({fmt(profile.workload.model_memory_gib or 0)}"
            f" GiB x headroom {fmt(sizing.memory_headroom)})",
        )
        for inst in candidates[max(0, index - MAX_LARGER_ALTERNATIVES) : index]
    ]
    larger = [
        Alternative(
            instance_type=other.type,
            rejected_because=f"larger than needed ({fmt(capacity_gib(other, sizing.fit_on))} GiB "
            f"{what}, {fmt(other.usd_per_hour)} USD/h): more, smaller instances keep more "
            "capacity when one fails",
        )
        for other in candidates[index + 1 : index + 1 + MAX_LARGER_ALTERNATIVES]
    ]
    return smaller + larger


def _round_up(n: int, multiple: int) -> int:
    return n if multiple <= 1 or n % multiple == 0 else n + multiple - n % multiple


def _scaling_plan(
    profile: WorkloadProfile,
    endpoint: str,
    rule: CompiledRule,
    min_capacity: int,
    max_capacity: int,
    plan: Any,
    warnings: list[Warning],
) -> ScalingPlan:
    outcome: ScalingOutcome = rule.then
    traffic = profile.traffic
    per_minute = round(traffic.per_instance_rps * profile.target_utilization * 60, 2)
    formula = (
        f"TargetValue = per_instance_rps {fmt(traffic.per_instance_rps)} x target_utilization "
        f"{fmt(profile.target_utilization)} x 60 s = {fmt(per_minute)} invocations per instance per minute"
    )
    policies: list[ScalingPolicy] = []
    scheduled: list[ScheduledAction] = []
    alarms: list[MetricAlarm] = []
    target_value: float | None = per_minute
    if outcome.method == "step":
        scale_in = round(traffic.per_instance_rps * outcome.scale_in_below * 60, 2)  # type: ignore[operator]
        policies, alarms, layout = aws.step_policies(endpoint, per_minute, scale_in, outcome)
        formula = (
            f"scale-out alarm at {fmt(per_minute)} invocations/instance/min (per_instance_rps "
            f"{fmt(traffic.per_instance_rps)} x {fmt(profile.target_utilization)} x 60), steps {layout}; "
            f"scale-in alarm below {fmt(scale_in)} ({fmt(traffic.per_instance_rps)} x "
            f"{fmt(outcome.scale_in_below or 0)} x 60)"
        )
        target_value = None
    else:
        policies = [aws.target_tracking_policy(endpoint, per_minute, outcome)]
    if outcome.method == "scheduled":
        for i, window in enumerate(traffic.peak_windows or ()):
            need = plan(window.rps).instances
            window_max = max(max_capacity, need)
            scheduled.append(aws.scheduled_action(endpoint, f"peak-{i + 1}-start", window.cron, need, window_max))
            if window.end_cron is not None:
                scheduled.append(
                    aws.scheduled_action(endpoint, f"peak-{i + 1}-end", window.end_cron, min_capacity, max_capacity)
                )
            else:
                warnings.append(
                    Warning(
                        code="peak_window_without_end",
                        rule_id=rule.id,
                        message=f"traffic.peak_windows[{i}] has no end_cron: MinCapacity stays at "
                        f"{need} after the peak until another scheduled action lowers it.",
                    )
                )
        if not scheduled:
            warnings.append(
                Warning(
                    code="scheduled_without_windows",
                    rule_id=rule.id,
                    message="Scheduled scaling was chosen but traffic.peak_windows is empty: "
                    "only the target-tracking policy underneath is emitted.",
                )
            )
    return ScalingPlan(
        method=outcome.method,
        rule_id=rule.id,
        reason=rule.because,
        target_value=target_value,
        formula=formula,
        aws=AwsScaling(
            register_scalable_target=aws.register_target(endpoint, min_capacity, max_capacity),
            scaling_policies=policies,
            scheduled_actions=scheduled,
            alarms=alarms,
        ),
        unavailable_methods=[PREDICTIVE_UNAVAILABLE],
    )


def _monitoring(
    ruleset: CompiledRuleset,
    facts: dict[str, Any],
    endpoint: str,
    profile: WorkloadProfile,
    instance: CatalogInstance,
    explanation: list[ExplanationEntry],
    warnings: list[Warning],
) -> Monitoring:
    table = ruleset.tables.get("monitoring")
    alarms: dict[str, MetricAlarm] = {}
    rationale: list[MonitoringRationale] = []
    tools: dict[str, MonitoringTool] = {}
    gpus = instance.accelerator.count if instance.accelerator and instance.accelerator.kind == "nvidia-gpu" else 0
    for rule in table.collect(facts) if table else ():
        explanation.append(_explain("monitoring", rule, facts))
        for spec in rule.then.alarms:
            alarm = aws.monitoring_alarm(
                endpoint,
                spec,
                p99_latency_ms=profile.sla.p99_latency_ms,
                vcpus=instance.vcpus,
                gpus=gpus,
                because=rule.because,
            )
            if alarm is None:
                warnings.append(
                    Warning(
                        code="alarm_not_applicable",
                        rule_id=rule.id,
                        message=f"{spec.kind} alarm skipped: {instance.type} publishes no such metric.",
                    )
                )
            elif alarm.AlarmName not in alarms:
                alarms[alarm.AlarmName] = alarm
                rationale.append(MonitoringRationale(alarm_name=alarm.AlarmName, rule_id=rule.id, reason=rule.because))
        for tool in rule.then.tools:
            tools.setdefault(tool, MonitoringTool(tool=tool, why=rule.because, rule_id=rule.id))
    return Monitoring(alarms=list(alarms.values()), tools=list(tools.values()), rationale=rationale)


def _advisories(
    ruleset: CompiledRuleset,
    facts: dict[str, Any],
    explanation: list[ExplanationEntry],
    warnings: list[Warning],
) -> None:
    table = ruleset.tables.get("advisories")
    for rule in table.collect(facts) if table else ():
        explanation.append(_explain("advisories", rule, facts))
        warnings.append(Warning(code=rule.then.warning, message=rule.because, rule_id=rule.id))
