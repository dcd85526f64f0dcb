"""The requests of each hosting mode, applied to moto's AWS where moto implements them.

moto implements CreateEndpointConfig with ServerlessConfig and AsyncInferenceConfig, CreateTransformJob, and
Application Auto Scaling with customised metrics; it refuses the provisioned-concurrency dimension
(sagemaker:variant:DesiredProvisionedConcurrency is not in its enum) and has no inference components (no
CreateInferenceComponent, no sagemaker:inference-component:DesiredCopyCount target), so those requests are
checked against botocore only; of an inference-component plan moto applies the CloudWatch alarms. Its SageMaker
knows an older list of instance types than botocore: a type it refuses is replaced by one of the same kind (the
payload itself is checked unchanged against botocore).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest
from emitted import botocore_errors, emitted_requests
from moto import mock_aws
from profiles import profile

from service.contract import Recommendation
from service.engine import CompiledRuleset, compile_ruleset, evaluate
from service.rulebook.loader import load_ruleset

ROOT = Path(__file__).resolve().parents[2]
_MOTO_STAND_IN = {"cpu": "ml.m5.xlarge", "nvidia-gpu": "ml.g4dn.xlarge", "neuron": "ml.inf1.xlarge"}

DEV = {
    "name": "dev-xgb",
    "workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 1.5, "processing_s": 0.2},
    "traffic": {"peak_rps": 0.2, "per_instance_rps": 20, "burstiness": "bursty"},
    "sla": {"p99_latency_ms": 2000, "availability": 0.99, "cold_start_ok": True},
}
SPEECH = {
    "name": "speech-asr",
    "workload": {"bound": "gpu", "model_kind": "deep_learning", "model_memory_gib": 6, "processing_s": 20},
    "traffic": {"peak_rps": 2, "mean_rps": 0.3, "per_instance_rps": 0.05, "burstiness": "bursty"},
    "sla": {"p99_latency_ms": 300000, "availability": 0.999, "delivery": "async_ok"},
}
NIGHTLY = {
    "name": "nightly-churn",
    "workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 3, "processing_s": 0.05},
    "traffic": {"peak_rps": 400, "mean_rps": 20, "per_instance_rps": 100, "burstiness": "periodic"},
    "sla": {"p99_latency_ms": 1000, "availability": 0.99, "delivery": "batch"},
}


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)


def _with_stand_in(call: Any, kwargs: dict[str, Any], holder: dict[str, Any], key: str, kind: str) -> None:
    try:
        call(**kwargs)
    except Exception as exc:  # moto's ValidationException for a type it does not know
        assert "nstanceType" in str(exc), exc
        holder[key] = _MOTO_STAND_IN[kind]
        call(**kwargs)


def _apply(rec: Recommendation, ruleset: CompiledRuleset, *, scaling: bool = True) -> dict[str, Any]:
    """Apply every request of ``rec`` as a caller would (the scaling ones only with ``scaling``); return what
    moto stored."""
    for service, operation, payload in emitted_requests(rec):
        assert botocore_errors(service, operation, payload) is None
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    aas = boto3.client("application-autoscaling", region_name="us-east-1")
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    stored: dict[str, Any] = {}
    hosting = rec.hosting.aws
    config = msgspec.to_builtins(hosting.create_endpoint_config) if hosting.create_endpoint_config else None
    job = msgspec.to_builtins(hosting.create_transform_job) if hosting.create_transform_job else None
    model = (config["ProductionVariants"][0] if config else job)["ModelName"]  # type: ignore[index]
    sagemaker.create_model(
        ModelName=model,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"},
    )
    kind = "cpu"
    if rec.instance is not None and rec.instance.accelerator is not None:
        kind = ruleset.instance_types[rec.instance.instance_type].accelerator.kind  # type: ignore[union-attr]
    if config is not None:
        variant = config["ProductionVariants"][0]
        _with_stand_in(sagemaker.create_endpoint_config, config, variant, "InstanceType", kind)
        stored["config"] = sagemaker.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
    if job is not None:
        _with_stand_in(sagemaker.create_transform_job, job, job["TransformResources"], "InstanceType", kind)
        stored["job"] = sagemaker.describe_transform_job(TransformJobName=job["TransformJobName"])
    if rec.scaling is not None and scaling:
        aws = rec.scaling.aws
        aas.register_scalable_target(**msgspec.to_builtins(aws.register_scalable_target))
        arns = {
            p.PolicyName: aas.put_scaling_policy(**msgspec.to_builtins(p))["PolicyARN"] for p in aws.scaling_policies
        }
        for alarm in aws.alarms:
            kwargs = msgspec.to_builtins(alarm)
            kwargs["AlarmActions"] = [
                arns[a.removeprefix("{policy_arn:").removesuffix("}")] for a in kwargs["AlarmActions"]
            ]
            cloudwatch.put_metric_alarm(**kwargs)
        stored["target"] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
        stored["policies"] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    for alarm in rec.monitoring.alarms:
        cloudwatch.put_metric_alarm(**msgspec.to_builtins(alarm))
    stored["alarms"] = cloudwatch.describe_alarms()["MetricAlarms"]
    return stored


def test_serverless_applies(ruleset: CompiledRuleset) -> None:
    rec = evaluate(profile(DEV), ruleset)
    assert rec.hosting.mode == "serverless"
    with mock_aws():
        stored = _apply(rec, ruleset)
    variant = stored["config"]["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5}
    assert "InstanceType" not in variant


def test_asynchronous_applies_with_scale_to_zero(ruleset: CompiledRuleset) -> None:
    rec = evaluate(profile(SPEECH), ruleset)
    assert rec.hosting.mode == "asynchronous"
    with mock_aws():
        stored = _apply(rec, ruleset)
    assert stored["config"]["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"].startswith("s3://<bucket>/")
    assert stored["target"]["MinCapacity"] == 0
    tracked = [p for p in stored["policies"] if p["PolicyType"] == "TargetTrackingScaling"]
    metric = tracked[0]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    assert (metric["MetricName"], metric["Namespace"]) == ("ApproximateBacklogSizePerInstance", "AWS/SageMaker")
    backlog = [a for a in stored["alarms"] if a.get("MetricName") == "HasBacklogWithoutCapacity"]
    step = [p for p in stored["policies"] if p["PolicyType"] == "StepScaling"]
    assert backlog[0]["AlarmActions"] == [step[0]["PolicyARN"]]


def test_batch_transform_applies(ruleset: CompiledRuleset) -> None:
    rec = evaluate(profile(NIGHTLY), ruleset)
    assert rec.hosting.mode == "batch_transform"
    with mock_aws():
        stored = _apply(rec, ruleset)
    assert stored["job"]["TransformResources"]["InstanceCount"] == rec.capacity.instances  # type: ignore[union-attr]
    assert "target" not in stored and stored["alarms"] == []


def test_serverless_with_provisioned_concurrency_applies(tmp_path: Path) -> None:
    """A ruleset whose serverless rule does not ask for cold_start_ok: provisioned concurrency, scaled on its
    utilisation over DesiredProvisionedConcurrency (the default rules price this and answer real-time)."""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target, ignore=shutil.ignore_patterns("tests", "schema", "README.md"))
    table = target / "tables" / "hosting.yaml"
    text = table.read_text()
    old = "      sla.cold_start_ok: true\n      workload.bound: [cpu, memory]\n"
    assert old in text
    table.write_text(text.replace(old, "      workload.bound: [cpu, memory]\n"))
    ruleset = compile_ruleset(load_ruleset(target))
    warm = copy.deepcopy(DEV)
    warm["sla"]["cold_start_ok"] = False  # type: ignore[index]
    rec = evaluate(profile(warm), ruleset)
    assert rec.hosting.mode == "serverless" and rec.scaling is not None
    with mock_aws():
        stored = _apply(rec, ruleset, scaling=False)  # moto refuses the provisioned-concurrency dimension
    assert stored["config"]["ProductionVariants"][0]["ServerlessConfig"]["ProvisionedConcurrency"] == 1
    target = rec.scaling.aws.register_scalable_target
    assert target.ScalableDimension == "sagemaker:variant:DesiredProvisionedConcurrency"
    assert (target.MinCapacity, target.MaxCapacity) == (1, 5)
    (policy,) = rec.scaling.aws.scaling_policies
    spec = policy.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification  # type: ignore[union-attr]
    assert spec is not None and spec.PredefinedMetricType == "SageMakerVariantProvisionedConcurrencyUtilization"


TINY_SHARED = {
    "name": "tiny-ranker",
    "workload": {
        "bound": "cpu",
        "model_kind": "classic_ml",
        "model_memory_gib": 0.2,
        "processing_s": 0.01,
        "shares_endpoint": True,
    },
    "traffic": {"peak_rps": 0.5, "per_instance_rps": 100, "burstiness": "steady"},
    "sla": {"p99_latency_ms": 100, "availability": 0.999},
}


def test_inference_components_pass_botocore_and_their_alarms_apply(ruleset: CompiledRuleset) -> None:
    """moto has no inference components: the endpoint configuration, the component and its copy scaling are
    checked against botocore only; the alarms are applied to moto's CloudWatch."""
    rec = evaluate(profile(TINY_SHARED), ruleset)
    assert rec.hosting.mode == "inference_components"
    operations = set()
    for service, operation, payload in emitted_requests(rec):
        assert botocore_errors(service, operation, payload) is None, operation
        operations.add(operation)
    assert {"CreateEndpointConfig", "CreateInferenceComponent", "RegisterScalableTarget", "PutScalingPolicy"} <= (
        operations
    )
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for alarm in rec.monitoring.alarms:
            cloudwatch.put_metric_alarm(**msgspec.to_builtins(alarm))
        assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == len(rec.monitoring.alarms) > 0
