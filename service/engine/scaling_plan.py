"""The scaling plan: the scalable target, its policies and scheduled actions, and their formulas.

Every method aims at the same per-instance target (``Decision.target``), which keeps the fleet
AZ-safe at steady state where the plan promises to survive an AZ loss. New instances take the
warm-up to serve, so the scale-out cooldown is at least the warm-up and scheduled actions start
one warm-up before their window.
"""

from __future__ import annotations

import math

from service.contract import ScalingPlan, UnavailableMethod, Warning, WorkloadProfile
from service.contract.aws import MetricAlarm, ScalingPolicy, ScheduledAction
from service.contract.recommendation import AwsScaling
from service.engine import aws_payloads as aws
from service.engine.capacity import fmt
from service.engine.core import Decision
from service.engine.cron import shift_earlier
from service.rulebook.models import ScalingOutcome

__all__ = ["PREDICTIVE_UNAVAILABLE", "scaling_plan"]

PREDICTIVE_UNAVAILABLE = UnavailableMethod(
    method="predictive",
    reason="Application Auto Scaling supports PredictiveScaling only for Amazon ECS, not for SageMaker "
    "variants; known peaks are covered by scheduled actions over target tracking instead.",
)


def scaling_plan(
    profile: WorkloadProfile, decision: Decision, endpoint: str, startup_s: float, warnings: list[Warning]
) -> ScalingPlan:
    rule = decision.scaling_rule
    outcome: ScalingOutcome = rule.then
    cooldown_out = max(outcome.scale_out_cooldown_s, math.ceil(startup_s))
    if cooldown_out > outcome.scale_out_cooldown_s:
        outcome = outcome.model_copy(update={"scale_out_cooldown_s": cooldown_out})
    per_minute = decision.target.per_minute
    rate = decision.per_instance_rps
    formula = (
        f"TargetValue = target {fmt(decision.target.per_instance_rps)} rps per instance x 60 s = {fmt(per_minute)} "
        f"invocations per instance per minute ({fmt(per_minute / 60 / rate)} of the {fmt(rate)} rps basis); "
        f"scale-out cooldown {cooldown_out} s >= warm-up {fmt(startup_s)} s"
    )
    policies: list[ScalingPolicy]
    alarms: list[MetricAlarm] = []
    target_value: float | None = per_minute
    if outcome.method == "step":
        scale_in = round(rate * (outcome.scale_in_below or 0) * 60, 2)
        policies, alarms, layout = aws.step_policies(endpoint, per_minute, scale_in, outcome)
        formula = (
            f"scale-out alarm at {fmt(per_minute)} invocations/instance/min (the target per instance x 60), steps "
            f"{layout}; scale-in alarm below {fmt(scale_in)} ({fmt(rate)} x {fmt(outcome.scale_in_below or 0)} x 60, "
            f"missing data counted as 0); scale-out cooldown {cooldown_out} s >= warm-up {fmt(startup_s)} s"
        )
        target_value = None
    else:
        policies = [aws.target_tracking_policy(endpoint, per_minute, outcome)]
    scheduled = _scheduled(profile, decision, endpoint, startup_s, warnings) if outcome.method == "scheduled" else []
    return ScalingPlan(
        method=outcome.method,
        rule_id=rule.id,
        reason=rule.because,
        target_value=target_value,
        formula=formula,
        aws=AwsScaling(
            register_scalable_target=aws.register_target(endpoint, decision.min_capacity, decision.max_capacity),
            scaling_policies=policies,
            scheduled_actions=scheduled,
            alarms=alarms,
        ),
        unavailable_methods=[PREDICTIVE_UNAVAILABLE],
    )


def _scheduled(
    profile: WorkloadProfile, decision: Decision, endpoint: str, startup_s: float, warnings: list[Warning]
) -> list[ScheduledAction]:
    rule = decision.scaling_rule
    min_capacity, max_capacity = decision.min_capacity, decision.max_capacity
    actions: list[ScheduledAction] = []
    for i, window in enumerate(profile.traffic.peak_windows or ()):
        need = decision.target.instances_for(window.rps)
        start = shift_earlier(window.cron, startup_s)
        if start is None:
            start = window.cron
            warnings.append(
                Warning(
                    code="schedule_not_shifted",
                    rule_id=rule.id,
                    message=f"traffic.peak_windows[{i}].cron {window.cron} cannot be moved {fmt(startup_s)} s "
                    "earlier exactly (L, W, # or a month boundary): the capacity arrives a warm-up late; "
                    "write the start one warm-up earlier yourself.",
                )
            )
        window_max = max(max_capacity, need)
        actions.append(aws.scheduled_action(endpoint, f"peak-{i + 1}-start", start, need, window_max))
        if window.end_cron is not None:
            actions.append(
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
    if not actions:
        warnings.append(
            Warning(
                code="scheduled_without_windows",
                rule_id=rule.id,
                message="Scheduled scaling was chosen but traffic.peak_windows is empty: "
                "only the target-tracking policy underneath is emitted.",
            )
        )
    return actions
