"""The rollout (``deployment.aws``) and the quota of every answer with an endpoint, for random profiles.

botocore checks the shapes (tests/emitted.py sends them as UpdateEndpoint and UpdateInferenceComponent); these
tests check what botocore cannot: the documented shares of the fleet, the alarms named for rollback, the quota.
"""

from __future__ import annotations

import math
from typing import Any

from emitted import botocore_errors, emitted_requests
from hypothesis import HealthCheck, given, settings
from profiles import hosting_profiles, profile

from service.contract import Recommendation
from service.engine import CompiledRuleset, ProfileRejected, evaluate
from service.engine.deployment_config import HEALTH_METRICS

_SETTINGS = settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def _answer(ruleset: CompiledRuleset, data: dict[str, Any]) -> Recommendation | None:
    try:
        return evaluate(profile(data), ruleset)
    except ProfileRejected:
        return None


@_SETTINGS
@given(data=hosting_profiles())
def test_every_endpoint_answer_says_how_to_roll_out(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    rec = _answer(ruleset, data)
    if rec is None:
        return
    mode = rec.hosting.mode
    if mode == "batch_transform":
        assert rec.deployment is None
        return
    deployment = rec.deployment
    assert deployment is not None, mode
    aws = deployment.aws
    if mode == "inference_components":
        assert aws.deployment_config is None and aws.inference_component_deployment_config is not None
        batch = aws.inference_component_deployment_config.RollingUpdatePolicy.MaximumBatchSize
        assert batch.Type == "CAPACITY_PERCENT" and 5 <= batch.Value <= 50
    else:
        assert aws.inference_component_deployment_config is None and aws.deployment_config is not None
        _check_endpoint_rollout(rec)
    updates = [op for _, op, _ in emitted_requests(rec) if op.startswith("Update")]
    assert updates == ["UpdateInferenceComponent" if mode == "inference_components" else "UpdateEndpoint"]
    for service, operation, payload in emitted_requests(rec):
        assert botocore_errors(service, operation, payload) is None


def _check_endpoint_rollout(rec: Recommendation) -> None:
    config = rec.deployment.aws.deployment_config  # type: ignore[union-attr]
    assert config is not None
    assert (config.BlueGreenUpdatePolicy is None) != (config.RollingUpdatePolicy is None)
    floor = rec.capacity.min_instances if rec.capacity is not None else 0
    if config.RollingUpdatePolicy is not None:
        assert rec.hosting.mode == "real_time" and floor >= 2, "rolling: not for serverless, nor one instance"
        batch = config.RollingUpdatePolicy.MaximumBatchSize
        assert batch.Type == "CAPACITY_PERCENT" and 5 <= batch.Value <= 50
        return
    traffic = config.BlueGreenUpdatePolicy.TrafficRoutingConfiguration  # type: ignore[union-attr]
    if traffic.Type == "CANARY":
        assert traffic.CanarySize is not None and traffic.CanarySize.Type == "INSTANCE_COUNT"
        assert 1 <= traffic.CanarySize.Value <= floor / 2, "a canary is at most 50% of the smallest fleet"
    elif traffic.Type == "LINEAR":
        assert traffic.LinearStepSize is not None and 10 <= traffic.LinearStepSize.Value <= 50
        assert floor >= 2
    if rec.hosting.mode in ("serverless", "asynchronous"):
        assert traffic.Type == "ALL_AT_ONCE"


@_SETTINGS
@given(data=hosting_profiles())
def test_rollback_names_health_alarms_only(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    rec = _answer(ruleset, data)
    if rec is None or rec.deployment is None:
        return
    aws = rec.deployment.aws
    config = aws.deployment_config or aws.inference_component_deployment_config
    rollback = config.AutoRollbackConfiguration  # type: ignore[union-attr]
    if rollback is None:
        return
    names = [a.AlarmName for a in rollback.Alarms]
    assert 1 <= len(names) <= 10 and len(set(names)) == len(names)
    monitoring = {a.AlarmName: a for a in rec.monitoring.alarms}
    scaling = {a.AlarmName for a in rec.scaling.aws.alarms} if rec.scaling else set()
    for name in names:
        assert name in monitoring and name not in scaling, name
        alarm = monitoring[name]
        metrics = {alarm.MetricName} | {q.MetricStat.Metric.MetricName for q in alarm.Metrics or () if q.MetricStat}
        assert metrics & HEALTH_METRICS, name


@_SETTINGS
@given(data=hosting_profiles())
def test_the_quota_holds_the_maximum_and_the_deployment_surge(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    rec = _answer(ruleset, data)
    if rec is None or rec.deployment is None:
        return
    quota = rec.deployment.quota
    if rec.hosting.mode == "serverless":
        assert quota is None
        return
    assert quota is not None and rec.capacity is not None and rec.instance is not None
    assert quota.instance_type == rec.instance.instance_type
    assert quota.steady == rec.capacity.max_instances
    config = rec.deployment.aws.deployment_config
    if config is not None and config.BlueGreenUpdatePolicy is not None:
        assert quota.during_deployment == 2 * quota.steady
    else:
        aws = rec.deployment.aws
        policy = config.RollingUpdatePolicy if config else aws.inference_component_deployment_config.RollingUpdatePolicy  # type: ignore[union-attr]
        assert policy is not None
        assert quota.during_deployment == quota.steady + math.ceil(quota.steady * policy.MaximumBatchSize.Value / 100)
    plan = rec.availability.multi_region
    regions = plan.regions if plan is not None and plan.recommended else [rec.cost.region]
    assert [r.region for r in quota.per_region] == regions
    assert all((r.steady, r.during_deployment) == (quota.steady, quota.during_deployment) for r in quota.per_region)
    warned = any(w.code == "accelerator_quota" for w in rec.warnings)
    assert warned == (rec.instance.family in ("g", "p", "inf"))
