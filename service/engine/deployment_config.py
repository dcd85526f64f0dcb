"""How a new model version replaces the running one: the deployment table's rule as AWS payloads.

For endpoints (real-time, serverless, asynchronous) ``UpdateEndpoint``'s ``DeploymentConfig``: blue/green with
all-at-once, canary or linear traffic shifting, or a rolling update; for inference components
``UpdateInferenceComponent``'s ``InferenceComponentDeploymentConfig`` (rolling only). Automatic rollback names the
health alarms of the monitoring plan (errors and latency, at most 10 as botocore's ``AlarmList`` allows), never the
scaling alarms: those trip on load, and a deployment rolled back for a traffic peak would never finish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.contract.aws import MetricAlarm
from service.contract.deployment import (
    AutoRollbackAlarm,
    AutoRollbackConfig,
    BlueGreenUpdatePolicy,
    CapacitySize,
    Deployment,
    DeploymentAws,
    DeploymentConfig,
    InferenceComponentCapacitySize,
    InferenceComponentDeploymentConfig,
    InferenceComponentRollingUpdatePolicy,
    RollingUpdatePolicy,
    TrafficRoutingConfig,
)
from service.contract.recommendation import ExplanationEntry
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.engine.monitoring import explain
from service.rulebook.deployment_models import DeploymentOutcome

__all__ = ["HEALTH_METRICS", "MAX_ROLLBACK_ALARMS", "RolloutPlan", "deployment_plan", "health_alarms", "surge"]

# Metrics that say the model answers badly (errors, latency), as opposed to load or saturation.
HEALTH_METRICS = frozenset({"Invocation5XXErrors", "ModelLatency", "OverheadLatency"})
MAX_ROLLBACK_ALARMS = 10  # botocore AlarmList: 1-10 alarm names
# botocore MaximumExecutionTimeoutInSeconds: 600-28800.
_MIN_TIMEOUT_S, _MAX_TIMEOUT_S = 600, 28_800


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """The deployment answer, and the rule outcome the quota's surge is computed from."""

    deployment: Deployment
    outcome: DeploymentOutcome


def health_alarms(alarms: list[MetricAlarm]) -> list[str]:
    """Names of the alarms on errors or latency (not the early warning below the SLA), at most 10."""
    names = []
    for alarm in alarms:
        metrics = {alarm.MetricName} | {q.MetricStat.Metric.MetricName for q in alarm.Metrics or () if q.MetricStat}
        if metrics & HEALTH_METRICS and not alarm.AlarmName.endswith("-early"):
            names.append(alarm.AlarmName)
    return names[:MAX_ROLLBACK_ALARMS]


def surge(outcome: DeploymentOutcome, instances: int) -> int:
    """Extra instances the deployment runs beside a fleet of ``instances``: a whole second fleet (blue/green), or
    one batch (rolling)."""
    if outcome.strategy == "blue_green":
        return instances
    assert outcome.batch_percent is not None
    return math.ceil(instances * outcome.batch_percent / 100)


def deployment_plan(
    ruleset: CompiledRuleset,
    facts: dict[str, Any],
    context: tuple[str, int, float],
    alarms: list[MetricAlarm],
    explanation: list[ExplanationEntry],
) -> RolloutPlan | None:
    """The deployment table's answer; None without the table or for batch transform (no endpoint to update).

    ``context`` is (hosting mode, the autoscaling minimum, warm-up seconds of a new instance).
    """
    table = ruleset.tables.get("deployment")
    mode, min_instances, startup_s = context
    if table is None or mode == "batch_transform":
        return None
    rule = table.first(facts)
    if rule is None:
        return None
    explanation.append(explain("deployment", rule, facts))
    outcome: DeploymentOutcome = rule.then
    names = health_alarms(alarms) if outcome.auto_rollback else []
    rollback = AutoRollbackConfig(Alarms=[AutoRollbackAlarm(AlarmName=n) for n in names]) if names else None
    timeout, timeout_step = _timeout(outcome, startup_s)
    steps = [timeout_step, _rollback_step(outcome, names)]
    aws = (
        DeploymentAws(inference_component_deployment_config=_component_config(outcome, timeout, rollback))
        if mode == "inference_components"
        else DeploymentAws(deployment_config=_endpoint_config(outcome, timeout, rollback, min_instances, steps))
    )
    deployment = Deployment(
        strategy=outcome.strategy,
        traffic=outcome.traffic,
        rule_id=rule.id,
        reason=rule.because,
        steps=steps,
        aws=aws,
    )
    return RolloutPlan(deployment, outcome)


def _step_count(outcome: DeploymentOutcome) -> int:
    if outcome.traffic == "canary":
        return 2
    if outcome.traffic == "linear":
        assert outcome.linear_step_percent is not None
        return math.ceil(100 / outcome.linear_step_percent)
    if outcome.strategy == "rolling":
        assert outcome.batch_percent is not None
        return math.ceil(100 / outcome.batch_percent)
    return 1


def _timeout(outcome: DeploymentOutcome, startup_s: float) -> tuple[int, str]:
    """MaximumExecutionTimeoutInSeconds: each step's warm-up and baking, twice over for a rollback, in bounds."""
    n = _step_count(outcome)
    per_step = math.ceil(startup_s) + outcome.wait_s
    raw = 2 * n * per_step
    timeout = min(max(raw, _MIN_TIMEOUT_S), _MAX_TIMEOUT_S)
    return timeout, (
        f"MaximumExecutionTimeoutInSeconds = 2 x {n} steps x (warm-up {fmt(math.ceil(startup_s))} s + baking "
        f"{outcome.wait_s} s) = {raw}, within {_MIN_TIMEOUT_S}-{_MAX_TIMEOUT_S}: {timeout}"
    )


def _rollback_step(outcome: DeploymentOutcome, names: list[str]) -> str:
    if not outcome.auto_rollback:
        return "no automatic rollback: the rule excludes deployment guardrails for this endpoint"
    if not names:
        return "no automatic rollback: the monitoring plan has no error or latency alarm to name"
    return (
        f"AutoRollbackConfiguration: the health alarms {', '.join(names)} (errors, latency; never the scaling alarms)"
    )


def _endpoint_config(
    outcome: DeploymentOutcome,
    timeout: int,
    rollback: AutoRollbackConfig | None,
    min_instances: int,
    steps: list[str],
) -> DeploymentConfig:
    if outcome.strategy == "rolling":
        assert outcome.batch_percent is not None
        batch = CapacitySize(Type="CAPACITY_PERCENT", Value=outcome.batch_percent)
        steps.append(
            f"rolling batches of {outcome.batch_percent}% of the instances; a rollback also goes "
            f"{outcome.batch_percent}% at a time (RollbackMaximumBatchSize; AWS's default, 100%, would start the "
            "whole old fleet at once beside the new one)"
        )
        policy = RollingUpdatePolicy(
            MaximumBatchSize=batch,
            WaitIntervalInSeconds=outcome.wait_s,
            MaximumExecutionTimeoutInSeconds=timeout,
            RollbackMaximumBatchSize=batch,
        )
        return DeploymentConfig(RollingUpdatePolicy=policy, AutoRollbackConfiguration=rollback)
    traffic = _traffic(outcome, min_instances, steps)
    blue_green = BlueGreenUpdatePolicy(
        TrafficRoutingConfiguration=traffic,
        TerminationWaitInSeconds=outcome.termination_wait_s,
        MaximumExecutionTimeoutInSeconds=timeout,
    )
    return DeploymentConfig(BlueGreenUpdatePolicy=blue_green, AutoRollbackConfiguration=rollback)


def _traffic(outcome: DeploymentOutcome, min_instances: int, steps: list[str]) -> TrafficRoutingConfig:
    if outcome.traffic == "canary":
        assert outcome.canary_percent is not None
        canary = max(1, math.floor(min_instances * outcome.canary_percent / 100))
        steps.append(
            f"CanarySize = max(1, floor(MinCapacity {min_instances} x {outcome.canary_percent}%)) = {canary} "
            f"instance(s): at most 50% of any fleet the scaling allows (at least {min_instances})"
        )
        return TrafficRoutingConfig(
            Type="CANARY",
            WaitIntervalInSeconds=outcome.wait_s,
            CanarySize=CapacitySize(Type="INSTANCE_COUNT", Value=canary),
        )
    if outcome.traffic == "linear":
        assert outcome.linear_step_percent is not None
        steps.append(f"linear steps of {outcome.linear_step_percent}% of the instances, {outcome.wait_s} s apart")
        return TrafficRoutingConfig(
            Type="LINEAR",
            WaitIntervalInSeconds=outcome.wait_s,
            LinearStepSize=CapacitySize(Type="CAPACITY_PERCENT", Value=outcome.linear_step_percent),
        )
    steps.append(f"all traffic moves at once, then {outcome.wait_s} s of baking before the old fleet goes")
    return TrafficRoutingConfig(Type="ALL_AT_ONCE", WaitIntervalInSeconds=outcome.wait_s)


def _component_config(
    outcome: DeploymentOutcome, timeout: int, rollback: AutoRollbackConfig | None
) -> InferenceComponentDeploymentConfig:
    """UpdateInferenceComponent requires a rolling policy; a blue/green rule for a component rolls in halves."""
    percent = outcome.batch_percent if outcome.batch_percent is not None else 50
    batch = InferenceComponentCapacitySize(Type="CAPACITY_PERCENT", Value=percent)
    policy = InferenceComponentRollingUpdatePolicy(
        MaximumBatchSize=batch,
        WaitIntervalInSeconds=outcome.wait_s,
        MaximumExecutionTimeoutInSeconds=timeout,
        RollbackMaximumBatchSize=batch,
    )
    return InferenceComponentDeploymentConfig(RollingUpdatePolicy=policy, AutoRollbackConfiguration=rollback)
