"""Properties of LLM plans (workload.llm), for random models, precisions, tokens, concurrency and objectives.

On every answer: the weights and the KV caches of the streams one copy serves fit the usable memory of its
tensor-parallel devices; streams per instance never exceed what the SLA allows nor the memory fit; the fleet
carries the peak concurrency at the target utilisation; the chosen accelerator runs the precision; the degree
divides the devices and the heads; and every emitted request passes botocore. The only refusal is a model that
fits nowhere at that precision.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import yaml
from emitted import botocore_errors, emitted_requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.contract import Recommendation, WorkloadProfile
from service.engine import CompiledRuleset, ProfileRejected, evaluate
from service.engine.llm_sizing import USABLE_DEVICE_MEMORY
from service.rulebook.llm_models import ModelCatalog

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
MODELS = ModelCatalog.model_validate(yaml.safe_load((RULES_DIR / "models.yaml").read_text())).by_id()
_SETTINGS = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@st.composite
def llm_profiles(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(sorted(MODELS)))
    context = draw(st.sampled_from([2048, 4096, 8192, 16384, 32768]))
    input_tokens = draw(st.integers(50, context - 50))
    output_tokens = draw(st.integers(1, context - input_tokens))
    llm = {
        "model": model,
        "precision": draw(st.sampled_from(["bf16", "fp16", "fp8", "int8", "int4"])),
        "kv_cache_precision": draw(st.sampled_from(["bf16", "fp8"])),
        "context_tokens": context,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "container": draw(st.sampled_from(["lmi", "tgi", "vllm"])),
    }
    return {
        "name": "llm-prop",
        "priority": draw(st.sampled_from(["latency", "balanced", "cost"])),
        "target_utilization": draw(st.sampled_from([0.5, 0.7, 0.9])),
        "workload": {"bound": "gpu", "model_kind": "llm", "llm": llm},
        "traffic": {"peak_concurrency": draw(st.integers(1, 3000)), "burstiness": "steady"},
        "sla": {
            "ttft_p99_ms": draw(st.sampled_from([200, 1000, 3000, 10000])),
            "itl_p99_ms": draw(st.sampled_from([20, 40, 80, 150])),
            "availability": draw(st.sampled_from([0.99, 0.999])),
        },
    }


def _evaluate(ruleset: CompiledRuleset, data: dict[str, Any]) -> tuple[WorkloadProfile, Recommendation | None]:
    prof = msgspec.convert(data, WorkloadProfile)
    try:
        return prof, evaluate(prof, ruleset)
    except ProfileRejected as exc:
        assert exc.code == "model-does-not-fit", exc.message
        return prof, None


@_SETTINGS
@given(data=llm_profiles())
def test_weights_and_kv_of_the_streams_fit_the_devices_of_a_copy(
    ruleset: CompiledRuleset, data: dict[str, Any]
) -> None:
    _, rec = _evaluate(ruleset, data)
    if rec is None:
        return
    llm, inst = rec.llm, rec.instance
    assert llm is not None and inst is not None
    accel = ruleset.instance_types[inst.instance_type].accelerator
    assert accel is not None
    per_unit = accel.memory_gib / accel.cores_per_device
    per_copy = math.ceil(llm.streams_per_instance / llm.copies_per_instance)
    need = llm.weights_gib + per_copy * llm.kv_cache_gib_per_stream
    assert need <= USABLE_DEVICE_MEMORY * per_unit * llm.tensor_parallel_degree + 0.01
    assert llm.copies_per_instance * llm.tensor_parallel_degree <= accel.count * accel.cores_per_device


@_SETTINGS
@given(data=llm_profiles())
def test_streams_are_bounded_by_the_sla_and_memory_and_carry_the_peak(
    ruleset: CompiledRuleset, data: dict[str, Any]
) -> None:
    prof, rec = _evaluate(ruleset, data)
    if rec is None:
        return
    llm, capacity = rec.llm, rec.capacity
    assert llm is not None and capacity is not None
    assert 1 <= llm.streams_per_instance <= min(llm.sla_streams_per_instance, llm.max_streams_per_instance)
    peak = prof.traffic.peak_concurrency
    assert peak is not None
    assert llm.streams_per_instance * capacity.instances >= peak / prof.target_utilization - 1e-9


@_SETTINGS
@given(data=llm_profiles())
def test_the_accelerator_runs_the_precision_and_the_degree_divides_the_heads(
    ruleset: CompiledRuleset, data: dict[str, Any]
) -> None:
    prof, rec = _evaluate(ruleset, data)
    if rec is None:
        return
    assert rec.llm is not None and rec.instance is not None and prof.workload.llm is not None
    accel = ruleset.instance_types[rec.instance.instance_type].accelerator
    assert accel is not None
    spec = ruleset.catalog.accelerator_spec(accel.name)
    assert spec is not None and prof.workload.llm.precision in spec.precisions
    model = MODELS[prof.workload.llm.model or ""]
    tp = rec.llm.tensor_parallel_degree
    assert model.num_attention_heads % tp == 0 and model.num_key_value_heads % tp == 0
    assert rec.instance.tensor_parallel_degree == tp


@_SETTINGS
@given(data=llm_profiles())
def test_payloads_pass_botocore_and_scale_on_concurrency(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    _, rec = _evaluate(ruleset, data)
    if rec is None:
        return
    for service, operation, payload in emitted_requests(rec):
        assert botocore_errors(service, operation, payload) is None, (operation, payload)
    assert rec.scaling is not None
    metrics = [
        p.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType
        for p in rec.scaling.aws.scaling_policies
        if p.TargetTrackingScalingPolicyConfiguration is not None
        and p.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification is not None
    ]
    assert metrics == ["SageMakerVariantConcurrentRequestsPerModelHighResolution"]
    assert not any(a.MetricName == "GPUUtilization" for a in rec.monitoring.alarms)
