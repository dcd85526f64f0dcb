"""Properties of every hosting mode, for random profiles with the hosting inputs (tests/profiles.hosting_profiles).

Each plan keeps its mode's documented limits (the hosting table's ``limits``, which tests/rules checks against
botocore); min <= expected <= peak cost; the same input gives the same bytes; every emitted request passes botocore.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from emitted import TRANSFORM_TYPES, botocore_errors, emitted_requests
from hypothesis import HealthCheck, given, settings
from profiles import hosting_profiles, profile

from service.contract import Recommendation, WorkloadProfile
from service.engine import CompiledRuleset, ProfileRejected, evaluate
from service.engine.core import processing_s
from service.rulebook.hosting_models import HostingLimits

# The engine's refusals a random profile may meet: the fit and the rate, and the hosting table's limits.
_ALLOWED_REFUSALS = {
    "model-does-not-fit",
    "throughput-unknown",
    "processing-time-above-real-time-limit",
    "payload-above-real-time-limit",
    "processing-time-above-async-limit",
    "payload-above-async-limit",
}
_SETTINGS = settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def _limits(ruleset: CompiledRuleset) -> HostingLimits:
    limits: HostingLimits = ruleset.source.tables["hosting"].limits
    return limits


def _evaluate(ruleset: CompiledRuleset, data: dict[str, Any]) -> tuple[WorkloadProfile, Recommendation | None]:
    prof = profile(data)
    try:
        return prof, evaluate(prof, ruleset)
    except ProfileRejected as exc:
        assert exc.code in _ALLOWED_REFUSALS, exc.message
        return prof, None


def _largest_payload(prof: WorkloadProfile) -> float:
    return max(prof.workload.payload_kib or 0, prof.workload.response_kib or 0)


@_SETTINGS
@given(data=hosting_profiles())
def test_each_plan_keeps_its_modes_limits(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    prof, rec = _evaluate(ruleset, data)
    limits = _limits(ruleset)
    work = processing_s(prof)
    if rec is None:
        return
    mode = rec.hosting.mode
    if mode == "real_time":
        assert work is None or work <= limits.real_time.max_processing_s
        assert _largest_payload(prof) <= limits.real_time.max_payload_kib
    elif mode == "serverless":
        sl = limits.serverless
        (variant,) = rec.hosting.aws.create_endpoint_config.ProductionVariants  # type: ignore[union-attr]
        config = variant.ServerlessConfig
        assert config is not None and variant.InstanceType is None and rec.instance is None and rec.capacity is None
        assert prof.workload.bound != "gpu"
        assert config.MemorySizeInMB in sl.memory_sizes_mb
        assert config.MemorySizeInMB >= (prof.workload.model_memory_gib or math.inf) * 1024 * sl.memory_headroom
        assert work is not None and work <= sl.max_processing_s
        assert prof.traffic.peak_rps * work <= config.MaxConcurrency <= sl.max_concurrency
        assert config.MaxConcurrency >= min(sl.min_max_concurrency, sl.max_concurrency)
        assert _largest_payload(prof) <= sl.max_payload_kib
        assert (config.ProvisionedConcurrency is None) == prof.sla.cold_start_ok
        if config.ProvisionedConcurrency is not None:
            assert 1 <= config.ProvisionedConcurrency <= config.MaxConcurrency
    elif mode == "asynchronous":
        assert prof.sla.delivery == "async_ok"
        assert work is None or work <= limits.asynchronous.max_processing_s
        assert _largest_payload(prof) <= limits.asynchronous.max_payload_kib
        assert rec.scaling is not None and rec.scaling.aws.register_scalable_target.MinCapacity == 0
        backlog = [a for a in rec.scaling.aws.alarms if a.MetricName == "HasBacklogWithoutCapacity"]
        assert len(backlog) == 1
    elif mode == "inference_components":
        _components_keep_their_limits(prof, rec, limits)
    else:
        assert mode == "batch_transform" and prof.sla.delivery == "batch"
        job = rec.hosting.aws.create_transform_job
        assert job is not None and rec.scaling is None and rec.hosting.aws.create_endpoint_config is None
        assert job.TransformResources.InstanceType in TRANSFORM_TYPES
        assert job.MaxConcurrentTransforms * job.MaxPayloadInMB <= limits.batch_transform.max_payload_mb
        assert job.ModelClientConfig.InvocationsTimeoutInSeconds <= limits.batch_transform.max_invocation_s
    # A HasBacklogWithoutCapacity alarm exactly when MinCapacity is 0.
    if rec.scaling is not None:
        zero = rec.scaling.aws.register_scalable_target.MinCapacity == 0
        assert zero == any(a.MetricName == "HasBacklogWithoutCapacity" for a in rec.scaling.aws.alarms)


def _components_keep_their_limits(prof: WorkloadProfile, rec: Recommendation, limits: HostingLimits) -> None:
    """A small CPU model on a shared endpoint; each copy within botocore's bounds and the model's memory; every AZ's
    instances hold its share of the copies; the copies left after losing an AZ carry the peak."""
    ic, w = limits.inference_components, prof.workload
    assert ic is not None and w.shares_endpoint and w.bound != "gpu" and prof.sla.delivery != "batch"
    assert w.model_memory_gib is not None and w.model_memory_gib <= ic.max_model_memory_gib
    component, scaling, c, inst = rec.hosting.aws.create_inference_component, rec.scaling, rec.capacity, rec.instance
    assert component is not None and scaling is not None and c is not None and inst is not None
    needs = component.Specification.ComputeResourceRequirements
    cores = needs.NumberOfCpuCoresRequired
    assert cores is not None and ic.cpu_cores_per_copy <= cores <= inst.vcpus
    assert needs.MinMemoryRequiredInMb >= max(ic.min_memory_mb, w.model_memory_gib * 1024)
    copies, target = component.RuntimeConfig.CopyCount, scaling.aws.register_scalable_target
    assert 1 <= target.MinCapacity <= copies <= target.MaxCapacity
    assert target.ScalableDimension == "sagemaker:inference-component:DesiredCopyCount"
    fit = min(int(inst.vcpus // cores), int(inst.memory_gib * 1024 // needs.MinMemoryRequiredInMb))
    k = rec.availability.az_count
    per_az = [copies // k + (1 if i < copies % k else 0) for i in range(k)]
    assert len(c.per_az) == k and all(n * fit >= m for n, m in zip(c.per_az, per_az, strict=True))
    (variant,) = rec.hosting.aws.create_endpoint_config.ProductionVariants  # type: ignore[union-attr]
    managed = variant.ManagedInstanceScaling
    assert managed is not None and managed.MinInstanceCount <= variant.InitialInstanceCount <= managed.MaxInstanceCount  # type: ignore[operator]
    if rec.availability.survives_az_loss and k >= 2:
        rate = c.throughput_basis.per_instance_rps * cores / inst.vcpus
        left = copies - max(per_az)
        assert prof.traffic.peak_rps / (left * rate) <= rec.availability.degraded_utilization + 1e-4


@_SETTINGS
@given(data=hosting_profiles())
def test_cost_bounds_hold_in_every_mode(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    _, rec = _evaluate(ruleset, data)
    if rec is None:
        return
    c = rec.cost
    assert 0 <= c.usd_per_month_min <= c.usd_per_month_expected <= c.usd_per_month_peak
    assert c.usd_per_month_peak == c.usd_per_month


@_SETTINGS
@given(data=hosting_profiles())
def test_same_input_same_bytes(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    _, first = _evaluate(ruleset, data)
    _, again = _evaluate(ruleset, data)
    assert msgspec.json.encode(first) == msgspec.json.encode(again)


@_SETTINGS
@given(data=hosting_profiles())
def test_every_emitted_request_passes_botocore(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    _, rec = _evaluate(ruleset, data)
    if rec is None:
        return
    for service, operation, payload in emitted_requests(rec):
        errors = botocore_errors(service, operation, payload)
        assert errors is None, f"{operation}: {errors}"


@_SETTINGS
@given(data=hosting_profiles())
def test_every_other_mode_is_rejected_with_a_reason(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    _, rec = _evaluate(ruleset, data)
    if rec is None:
        return
    modes = {"real_time", "serverless", "asynchronous", "inference_components", "batch_transform"}
    assert {r.mode for r in rec.hosting.rejected} == modes - {rec.hosting.mode}
    assert all(r.reason for r in rec.hosting.rejected)
