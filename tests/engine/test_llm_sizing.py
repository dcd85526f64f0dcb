"""LLM sizing end to end: the 70B plan an expert checks by hand, its fp8 what-if, the settings' limits, the
request-rate conversion, and the refusals of profiles that cannot be sized."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from service.contract import WorkloadProfile
from service.engine import CompiledRuleset, ProfileRejected, evaluate
from service.engine.whatif import what_if_report


def _profile(**llm: Any) -> dict[str, Any]:
    spec = {"model": "llama-3.1-70b", "precision": "bf16", "context_tokens": 8192, "input_tokens": 2000}
    return {
        "name": "llama31-70b",
        "workload": {"bound": "gpu", "model_kind": "llm", "llm": {**spec, "output_tokens": 500, **llm}},
        "traffic": {"peak_concurrency": 32, "burstiness": "steady"},
        "sla": {"ttft_p99_ms": 2000, "itl_p99_ms": 100, "availability": 0.999},
    }


def _convert(data: dict[str, Any]) -> WorkloadProfile:
    return msgspec.convert(data, WorkloadProfile)


def test_70b_bf16_holds_weights_and_kv_of_its_streams(ruleset: CompiledRuleset) -> None:
    rec = evaluate(_convert(_profile()), ruleset)
    llm, inst = rec.llm, rec.instance
    assert llm is not None and inst is not None and inst.accelerator_count >= llm.tensor_parallel_degree
    # 70.55B x 2 bytes; 2 x 80 x 8 x 128 x 2 bytes x 2,500 tokens
    assert llm.weights_gib == pytest.approx(70.5537e9 * 2 / 2**30, abs=0.01)
    assert llm.kv_cache_gib_per_stream == pytest.approx(2 * 80 * 8 * 128 * 2 * 2500 / 2**30, abs=1e-4)
    per_copy = math.ceil(llm.streams_per_instance / llm.copies_per_instance)
    held = llm.tensor_parallel_degree * inst.accelerator_memory_gib
    assert llm.weights_gib + per_copy * llm.kv_cache_gib_per_stream <= held
    assert llm.container_env["OPTION_TENSOR_PARALLEL_DEGREE"] == str(llm.tensor_parallel_degree)
    assert llm.container_env["OPTION_MAX_MODEL_LEN"] == "8192"


def test_the_model_loads_within_the_container_health_check(ruleset: CompiledRuleset) -> None:
    rec = evaluate(_convert(_profile()), ruleset)
    assert rec.llm is not None and rec.hosting.aws.create_endpoint_config is not None
    (variant,) = rec.hosting.aws.create_endpoint_config.ProductionVariants
    loading = int(rec.llm.container_env["OPTION_MODEL_LOADING_TIMEOUT"])
    assert variant.ContainerStartupHealthCheckTimeoutInSeconds is not None
    assert loading <= variant.ContainerStartupHealthCheckTimeoutInSeconds


def test_requests_per_second_by_littles_law_are_stated(ruleset: CompiledRuleset) -> None:
    rec = evaluate(_convert(_profile()), ruleset)
    assert rec.capacity is not None and rec.llm is not None
    assert rec.llm.stream_duration_s == pytest.approx(2.0 + 500 * 0.1)
    assert any(step.startswith("Little's law: peak 32 streams / 52 s") for step in rec.capacity.steps)


def test_fp8_on_fp8_hardware_is_cheaper_in_the_what_if(ruleset: CompiledRuleset) -> None:
    report = what_if_report(_convert(_profile()), ruleset)
    fp8 = next(w for w in report.what_if if w.change == "precision=fp8")
    assert fp8.delta_usd_per_month < 0
    assert "65.7 GiB" in fp8.note and "NVIDIA H100" in fp8.note and "NVIDIA A100" not in fp8.note.split(";")[0]
    assert fp8.instance_type is not None
    accel = ruleset.instance_types[fp8.instance_type].accelerator
    assert accel is not None
    spec = ruleset.catalog.accelerator_spec(accel.name)
    assert spec is not None and "fp8" in spec.precisions
    assert any(w.change == "precision=int4" for w in report.what_if)


def test_a_load_test_bounds_the_streams(ruleset: CompiledRuleset) -> None:
    data = _profile()
    data["load_tests"] = [{"instance_type": "ml.g6e.12xlarge", "max_concurrency": 12, "output_tokens_per_s": 120}]
    rec = evaluate(_convert(data), ruleset)
    assert rec.llm is not None and rec.instance is not None
    assert (rec.instance.instance_type, rec.llm.streams_per_instance, rec.llm.streams_basis) == (
        "ml.g6e.12xlarge",
        12,
        "load_test",
    )
    assert "llm_throughput_estimated" not in {w.code for w in rec.warnings}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (
            {"traffic": {"peak_concurrency": 8, "burstiness": "steady"}, "workload": None},
            "llm-units-need-workload-llm",
            "traffic.peak_concurrency",
        ),
        ({"traffic": {"burstiness": "steady"}}, "peak-required", "traffic.peak_concurrency"),
        ({"sla": {"ttft_p99_ms": 500, "availability": 0.99}}, "llm-latency-objective-required", "sla.itl_p99_ms"),
        (
            {"traffic": {"peak_concurrency": 8, "per_instance_rps": 2, "burstiness": "steady"}},
            "llm-rate-in-requests",
            "traffic.per_instance_rps",
        ),
    ],
)
def test_what_is_missing_is_named(ruleset: CompiledRuleset, change: dict[str, Any], code: str, field: str) -> None:
    data = {**_profile(), **{k: v for k, v in change.items() if v is not None}}
    if "workload" in change:  # the same load without workload.llm
        data["workload"] = {"bound": "gpu", "model_kind": "llm", "model_memory_gib": 15}
        data["sla"] = {"p99_latency_ms": 10000, "availability": 0.999}
    with pytest.raises(ProfileRejected) as refused:
        evaluate(_convert(data), ruleset)
    assert (refused.value.code, refused.value.field) == (code, field)


def test_a_profile_without_llm_still_needs_requests_per_second(ruleset: CompiledRuleset) -> None:
    data = {
        "workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 1},
        "traffic": {"per_instance_rps": 10, "burstiness": "steady"},
        "sla": {"p99_latency_ms": 100, "availability": 0.99},
    }
    with pytest.raises(ProfileRejected) as refused:
        evaluate(_convert(data), ruleset)
    assert (refused.value.code, refused.value.field) == ("peak-required", "traffic.peak_rps")
