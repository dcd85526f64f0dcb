"""Every emitted AWS payload passes botocore's own validation and is accepted by moto's AWS."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import msgspec
import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings
from moto import mock_aws
from profiles import WORKED_EXAMPLE, profile, profiles

from service.contract import Recommendation
from service.engine import CompiledRuleset, ProfileRejected, evaluate

_session = get_session()
_MODELS = {name: _session.get_service_model(name) for name in ("application-autoscaling", "cloudwatch")}
_validator = ParamValidator()


def _check(service: str, operation: str, payload: Any) -> None:
    shape = _MODELS[service].operation_model(operation).input_shape
    report = _validator.validate(msgspec.to_builtins(payload), shape)
    assert not report.has_errors(), f"{operation}: {report.generate_report()}"


def _all_payloads(rec: Recommendation) -> list[tuple[str, str, Any]]:
    aws = rec.scaling.aws
    return [
        ("application-autoscaling", "RegisterScalableTarget", aws.register_scalable_target),
        *(("application-autoscaling", "PutScalingPolicy", p) for p in aws.scaling_policies),
        *(("application-autoscaling", "PutScheduledAction", a) for a in aws.scheduled_actions),
        *(("cloudwatch", "PutMetricAlarm", a) for a in aws.alarms),
        *(("cloudwatch", "PutMetricAlarm", a) for a in rec.monitoring.alarms),
    ]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_every_payload_passes_botocore_validation(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    try:
        rec = evaluate(profile(data), ruleset)
    except ProfileRejected:
        return
    for service, operation, payload in _all_payloads(rec):
        _check(service, operation, payload)


_SCENARIOS = {
    "steady": {},
    "bursty": {"traffic": {"peak_rps": 150, "per_instance_rps": 20, "burstiness": "bursty"}},
    "periodic": {
        "traffic": {
            "peak_rps": 150,
            "mean_rps": 40,
            "per_instance_rps": 20,
            "burstiness": "periodic",
            "peak_windows": [{"cron": "cron(0 8 ? * MON-FRI *)", "end_cron": "cron(0 18 ? * MON-FRI *)", "rps": 150}],
        }
    },
    "gpu": {"workload": {"bound": "gpu", "model_kind": "vision", "model_memory_gib": 10}},
}


@pytest.mark.parametrize("scenario", sorted(_SCENARIOS))
def test_payloads_apply_to_mocked_aws(ruleset: CompiledRuleset, scenario: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply the whole plan to moto's Application Auto Scaling and CloudWatch, as a caller would."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    data = copy.deepcopy(WORKED_EXAMPLE) | _SCENARIOS[scenario]
    rec = evaluate(profile(data), ruleset)
    aws = rec.scaling.aws
    with mock_aws():
        aas = boto3.client("application-autoscaling", region_name="us-east-1")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        aas.register_scalable_target(**msgspec.to_builtins(aws.register_scalable_target))
        arns = {
            p.PolicyName: aas.put_scaling_policy(**msgspec.to_builtins(p))["PolicyARN"] for p in aws.scaling_policies
        }
        for action in aws.scheduled_actions:
            aas.put_scheduled_action(**msgspec.to_builtins(action))
        for alarm in [*aws.alarms, *rec.monitoring.alarms]:
            kwargs = msgspec.to_builtins(alarm)
            kwargs["AlarmActions"] = [
                arns[a.removeprefix("{policy_arn:").removesuffix("}")] for a in kwargs.get("AlarmActions", [])
            ]
            cloudwatch.put_metric_alarm(**kwargs)

        target = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (
            rec.capacity.min_instances,
            rec.capacity.max_instances,
        )
        policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        assert sorted(p["PolicyName"] for p in policies) == sorted(arns)
        actions = aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
        assert len(actions) == len(aws.scheduled_actions)
        alarms = cloudwatch.describe_alarms()["MetricAlarms"]
        assert len(alarms) == len(aws.alarms) + len(rec.monitoring.alarms)
        if scenario == "bursty":
            assert {a["AlarmActions"][0] for a in alarms if a["AlarmActions"]} == set(arns.values())
