"""Every emitted AWS payload passes botocore's own validation and is accepted by moto's AWS."""

from __future__ import annotations

import copy
import math
from typing import Any, get_args

import boto3
import msgspec
import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from emitted import emitted_requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from profiles import WORKED_EXAMPLE, profile, profiles

from service.contract import Recommendation
from service.contract.aws import MetricAlarm
from service.engine import CompiledRuleset, ProfileRejected, evaluate
from service.engine import aws_payloads as aws
from service.rulebook.models import AlarmKind, AlarmSpec, ScalingOutcome, StepSpec

_session = get_session()
_MODELS = {name: _session.get_service_model(name) for name in ("application-autoscaling", "cloudwatch", "sagemaker")}
_validator = ParamValidator()


def _check(service: str, operation: str, payload: Any) -> None:
    shape = _MODELS[service].operation_model(operation).input_shape
    report = _validator.validate(msgspec.to_builtins(payload), shape)
    assert not report.has_errors(), f"{operation}: {report.generate_report()}"


def _all_payloads(rec: Recommendation) -> list[tuple[str, str, Any]]:
    return list(emitted_requests(rec))


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


# moto's SageMaker knows an older list of instance types than botocore (moto.sagemaker.models
# VALID_INSTANCE_TYPES: no c6i, c7i, m6i, m7i, r6i, r7i, g5, g6, g6e, p4de, p5 or inf2). The
# CreateEndpointConfig payload is validated unchanged against botocore's shape above; applying it to
# moto, a type moto does not know is replaced by one of the same kind that it does.
_MOTO_STAND_IN = {"cpu": "ml.m5.xlarge", "nvidia-gpu": "ml.g4dn.xlarge", "neuron": "ml.inf1.xlarge"}


def _apply_endpoint_config(sagemaker: Any, rec: Recommendation, ruleset: CompiledRuleset) -> None:
    config = msgspec.to_builtins(rec.hosting.aws.create_endpoint_config)
    variant = config["ProductionVariants"][0]
    sagemaker.create_model(
        ModelName=variant["ModelName"],
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"},
    )
    accel = ruleset.instance_types[variant["InstanceType"]].accelerator
    try:
        sagemaker.create_endpoint_config(**config)
    except sagemaker.exceptions.ClientError as exc:
        assert "instanceType" in str(exc), exc  # only moto's older type list may refuse it
        variant["InstanceType"] = _MOTO_STAND_IN[accel.kind if accel else "cpu"]
        sagemaker.create_endpoint_config(**config)
    stored = sagemaker.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
    assert stored["ProductionVariants"][0]["InitialInstanceCount"] == rec.capacity.instances


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
        _apply_endpoint_config(boto3.client("sagemaker", region_name="us-east-1"), rec, ruleset)
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


# ---------------------------------------------------------------- CreateEndpointConfig


def _config(startup_s: float, **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
    args: dict[str, Any] = {"volume_size_supported": True, "volume_size_gib": None} | kwargs
    endpoint = args.pop("endpoint", "fraud-scorer")
    instance_type = args.pop("instance_type", "ml.m5.xlarge")
    payload, notes = aws.create_endpoint_config(endpoint, instance_type, 3, startup_s, **args)
    _check("sagemaker", "CreateEndpointConfig", payload)
    return msgspec.to_builtins(payload), notes


def test_endpoint_config_names_routing_and_timeouts() -> None:
    payload, notes = _config(200)
    assert notes == []
    assert payload == {
        "EndpointConfigName": "fraud-scorer-config",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "fraud-scorer-model",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 3,
                "ModelDataDownloadTimeoutInSeconds": 300,  # ceil(200 x 1.5)
                "ContainerStartupHealthCheckTimeoutInSeconds": 300,
                "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
            }
        ],
    }


@pytest.mark.parametrize(
    ("startup_s", "timeout", "note"),
    [
        (10, 60, "startup 10 s x 1.5 = 15 s is below the 60 s minimum of ModelDataDownloadTimeoutInSeconds"),
        (40, 60, None),
        (100.2, 151, None),
        (2400, 3600, None),
        (3000, 3600, "startup 3000 s x 1.5 = 4500 s exceeds the 3600 s maximum of"),
        (5000, 3600, "startup 5000 s exceeds the 3600 s maximum of ModelDataDownloadTimeoutInSeconds and "),
    ],
)
def test_startup_timeouts_are_clamped_with_a_note(startup_s: float, timeout: int, note: str | None) -> None:
    payload, notes = _config(startup_s)
    variant = payload["ProductionVariants"][0]
    assert variant["ModelDataDownloadTimeoutInSeconds"] == variant["ContainerStartupHealthCheckTimeoutInSeconds"]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == timeout
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(note), notes
        assert "ContainerStartupHealthCheckTimeoutInSeconds" in notes[0]


@pytest.mark.parametrize(
    ("supported", "size", "sent", "note"),
    [
        (True, None, None, None),
        (True, 30, 30, None),
        (True, 512, 512, None),
        (True, 900, 512, "volume 900 GiB exceeds the 512 GiB maximum of VolumeSizeInGB"),
        (True, 0, 1, "volume 0 GiB is below the 1 GiB minimum of VolumeSizeInGB"),
        (False, 30, None, "VolumeSizeInGB 30 GiB left out: ml.g5.2xlarge does not accept"),
        (False, None, None, None),
    ],
)
def test_volume_size_only_where_accepted(supported: bool, size: int | None, sent: int | None, note: str | None) -> None:
    payload, notes = _config(200, instance_type="ml.g5.2xlarge", volume_size_supported=supported, volume_size_gib=size)
    assert payload["ProductionVariants"][0].get("VolumeSizeInGB") == sent
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(note), notes


def test_long_endpoint_names_are_cut_to_fit() -> None:
    endpoint = "a" * 56 + "-b-c-d"  # 62 characters, the longest endpoint names are 63
    payload, notes = _config(200, endpoint=endpoint)
    config, model = payload["EndpointConfigName"], payload["ProductionVariants"][0]["ModelName"]
    assert len(config) <= 63 and config.endswith("-config") and "--" not in config
    assert len(model) <= 63 and model.endswith("-model")
    assert len(notes) == 2 and all("shortened" in n for n in notes)


@settings(max_examples=200)
@given(
    startup=st.floats(min_value=0, max_value=20_000, allow_nan=False),
    supported=st.booleans(),
    size=st.none() | st.integers(min_value=-5, max_value=2000),
    endpoint=st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", fullmatch=True),
)
def test_endpoint_config_is_always_valid(startup: float, supported: bool, size: int | None, endpoint: str) -> None:
    payload, notes = _config(startup, endpoint=endpoint, volume_size_supported=supported, volume_size_gib=size)
    variant = payload["ProductionVariants"][0]
    timeout = variant["ContainerStartupHealthCheckTimeoutInSeconds"]
    wanted = math.ceil(startup * aws.STARTUP_TIMEOUT_MARGIN)
    assert timeout == min(max(wanted, 60), 3600)
    assert timeout >= min(startup, 3600)  # never shorter than the warm-up while the maximum allows
    clamped = wanted != timeout or (size is not None and (not supported or not 1 <= size <= 512))
    shortened = len(endpoint) + len("-config") > 63
    assert bool(notes) == (clamped or shortened)


def test_endpoint_config_refuses_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="initial_count"):
        aws.create_endpoint_config("e", "ml.m5.xlarge", 0, 100, volume_size_supported=True, volume_size_gib=None)
    with pytest.raises(ValueError, match="startup_s"):
        aws.create_endpoint_config("e", "ml.m5.xlarge", 1, math.nan, volume_size_supported=True, volume_size_gib=None)


# ---------------------------------------------------------------- step scaling: scale-in fires at no traffic

_STEP = ScalingOutcome(
    method="step",
    scale_out_steps=[StepSpec(above=0, add_percent=50), StepSpec(above=0.5, add_percent=100)],
    scale_in_below=0.3,
)


def test_scale_in_alarm_fills_missing_minutes_and_breaches_without_data() -> None:
    policies, alarms, _ = aws.step_policies("fraud-scorer", 840.0, 360.0, _STEP)
    for policy in policies:
        _check("application-autoscaling", "PutScalingPolicy", policy)
    for alarm in alarms:
        _check("cloudwatch", "PutMetricAlarm", alarm)
    scale_out, scale_in = (msgspec.to_builtins(a) for a in alarms)

    assert scale_out["MetricName"] == "InvocationsPerInstance" and scale_out["Statistic"] == "Sum"
    assert scale_out["Period"] == 60 and "Metrics" not in scale_out
    assert scale_out["TreatMissingData"] == "notBreaching"

    # Metric math: no single-metric fields beside Metrics (PutMetricAlarm refuses both together).
    assert not {"Namespace", "MetricName", "Dimensions", "Period", "Statistic", "ExtendedStatistic", "Unit"} & set(
        scale_in
    )
    m1, e1 = scale_in["Metrics"]
    assert m1 == {
        "Id": "m1",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/SageMaker",
                "MetricName": "InvocationsPerInstance",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": "fraud-scorer"},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
            },
            "Period": 60,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }
    assert e1["Id"] == "e1" and e1["Expression"] == "FILL(m1, 0)" and e1["ReturnData"] is True and e1["Label"]
    # A window with no point at all cannot be filled: missing data must count as breaching (below).
    assert scale_in["TreatMissingData"] == "breaching"
    assert scale_in["ComparisonOperator"] == "LessThanThreshold" and scale_in["Threshold"] == 360.0
    assert scale_in["EvaluationPeriods"] == scale_in["DatapointsToAlarm"] == 15
    assert scale_in["AlarmActions"] == ["{policy_arn:fraud-scorer-step-scale-in}"]
    # A filled 0 is below any positive threshold, so zeros, gaps and silence all breach alike.
    assert scale_in["Threshold"] > 0


def test_step_alarms_apply_to_mocked_cloudwatch(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    _, alarms, _ = aws.step_policies("fraud-scorer", 840.0, 360.0, _STEP)
    extra = [
        _monitor(kind, per_instance_rps=20.0)
        for kind in ("caller_latency_p99", "latency_p99_early", "invocations_above_capacity")
    ]
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for alarm in [*alarms, *(a for a in extra if a is not None)]:
            kwargs = msgspec.to_builtins(alarm)
            kwargs["AlarmActions"] = ["arn:aws:sns:us-east-1:123456789012:t"] if "AlarmActions" in kwargs else []
            cloudwatch.put_metric_alarm(**kwargs)
        stored = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert stored["fraud-scorer-step-scale-in-alarm"]["TreatMissingData"] == "breaching"
    assert len(stored) == 5


# ---------------------------------------------------------------- monitoring alarms


def _monitor(kind: str, threshold: float | None = None, **kwargs: Any) -> MetricAlarm | None:
    args: dict[str, Any] = {"p99_latency_ms": 200.0, "vcpus": 4, "gpus": 0, "because": "Why."} | kwargs
    alarm = aws.monitoring_alarm("fraud-scorer", AlarmSpec(kind=kind, threshold=threshold), **args)  # type: ignore[arg-type]
    if alarm is not None:
        _check("cloudwatch", "PutMetricAlarm", alarm)
    return alarm


def test_latency_p99_is_unchanged() -> None:
    alarm = _monitor("latency_p99")
    assert alarm is not None
    assert alarm.AlarmDescription == "p99 ModelLatency above 200000 us (200 ms). Why."
    assert (alarm.Threshold, alarm.Unit, alarm.ExtendedStatistic) == (200_000, "Microseconds", "p99")


def test_latency_p99_early_warns_below_the_sla_in_microseconds() -> None:
    alarm = _monitor("latency_p99_early")
    assert alarm is not None
    assert alarm.AlarmName == "fraud-scorer-model-latency-p99-early"
    assert alarm.Threshold == 160_000  # 0.8 x 200 ms x 1000 us/ms
    assert (alarm.MetricName, alarm.ExtendedStatistic, alarm.Unit) == ("ModelLatency", "p99", "Microseconds")
    assert "160 ms, 80% of the 200 ms SLA" in alarm.AlarmDescription
    custom = _monitor("latency_p99_early", 0.5)
    assert custom is not None and custom.Threshold == 100_000


def test_caller_latency_adds_model_and_overhead_microseconds() -> None:
    alarm = _monitor("caller_latency_p99")
    assert alarm is not None
    data = msgspec.to_builtins(alarm)
    assert not {"Namespace", "MetricName", "Statistic", "ExtendedStatistic", "Unit", "Period"} & set(data)
    m1, m2, e1 = data["Metrics"]
    assert (m1["MetricStat"]["Metric"]["MetricName"], m2["MetricStat"]["Metric"]["MetricName"]) == (
        "ModelLatency",
        "OverheadLatency",
    )
    for metric in (m1, m2):
        assert metric["MetricStat"]["Stat"] == "p99.5" and metric["MetricStat"]["Unit"] == "Microseconds"
        assert metric["MetricStat"]["Period"] == 60 and "ReturnData" not in metric
    assert e1["Expression"] == "m1 + m2" and e1["ReturnData"] is True
    assert data["Threshold"] == 200_000  # the whole SLA, 200 ms, in microseconds
    assert "bounds the p99 of model + overhead from above" in data["AlarmDescription"]


def _nearest_rank(values: list[int], p: float) -> int:
    return sorted(values)[math.ceil(p * len(values)) - 1]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=400))
def test_two_p99_5_bound_the_p99_of_the_sum(samples: list[tuple[int, int]]) -> None:
    """Why caller_latency_p99 adds p99.5s: by the union bound their sum is at least the p99 of the sum."""
    xs, ys = [x for x, _ in samples], [y for _, y in samples]
    total = [x + y for x, y in samples]
    assert _nearest_rank(total, 0.99) <= _nearest_rank(xs, 0.995) + _nearest_rank(ys, 0.995)


def test_two_p99_do_not_bound_the_p99_of_the_sum() -> None:
    # 1000 requests: the model is slow for 9 of them, the overhead for 9 others.
    xs = [1000] * 9 + [0] * 991
    ys = [0] * 9 + [1000] * 9 + [0] * 982
    total = [x + y for x, y in zip(xs, ys, strict=True)]
    assert _nearest_rank(xs, 0.99) + _nearest_rank(ys, 0.99) == 0 < _nearest_rank(total, 0.99) == 1000


def test_invocations_above_capacity_is_per_minute() -> None:
    assert _monitor("invocations_above_capacity") is None  # no per-instance rate, no alarm
    alarm = _monitor("invocations_above_capacity", per_instance_rps=20.0)
    assert alarm is not None
    assert alarm.Threshold == 1080  # 0.9 x 20 rps x 60 s
    assert (alarm.MetricName, alarm.Statistic, alarm.Period) == ("InvocationsPerInstance", "Sum", 60)
    assert alarm.ComparisonOperator == "GreaterThanThreshold" and alarm.TreatMissingData == "notBreaching"
    custom = _monitor("invocations_above_capacity", 0.5, per_instance_rps=2.5)
    assert custom is not None and custom.Threshold == 75  # 0.5 x 2.5 x 60


_KINDS = get_args(AlarmKind)  # every kind the rule files may name


@settings(max_examples=200)
@given(
    kind=st.sampled_from(_KINDS),
    threshold=st.none() | st.floats(min_value=0.001, max_value=100),
    sla=st.floats(min_value=0.5, max_value=60_000),
    vcpus=st.integers(1, 192),
    gpus=st.integers(0, 8),
    rps=st.none() | st.floats(min_value=0.001, max_value=1e5),
    because=st.text(min_size=10, max_size=500),
)
def test_every_monitoring_alarm_passes_botocore(
    kind: str, threshold: float | None, sla: float, vcpus: int, gpus: int, rps: float | None, because: str
) -> None:
    alarm = _monitor(kind, threshold, p99_latency_ms=sla, vcpus=vcpus, gpus=gpus, because=because, per_instance_rps=rps)
    absent = (kind == "gpu_utilization" and gpus == 0) or (kind == "invocations_above_capacity" and rps is None)
    assert (alarm is None) == absent
