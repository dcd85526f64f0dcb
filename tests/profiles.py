"""Profile builders and a hypothesis strategy of valid profiles, shared by tests."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from service.api.openapi_docs import WORKED_EXAMPLE
from service.contract import WorkloadProfile

__all__ = ["WORKED_EXAMPLE", "hosting_profiles", "profile", "profiles"]


def profile(data: dict[str, Any]) -> WorkloadProfile:
    return msgspec.convert(data, WorkloadProfile)


# Catalog types of every family, to say where a rate was measured.
_TESTED_TYPES = ["ml.m5.xlarge", "ml.c5.large", "ml.c6i.2xlarge", "ml.r5.xlarge", "ml.g5.xlarge", "ml.inf2.xlarge"]
_rps = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
_cron = st.sampled_from(["cron(0 8 ? * MON-FRI *)", "cron(30 17 * * ? *)", "cron(0 0 1 * ? *)"])


@st.composite
def profiles(draw: st.DrawFn) -> dict[str, Any]:
    """Random valid profiles across every enum and the numeric ranges the contract allows."""
    peak = draw(_rps)
    traffic: dict[str, Any] = {
        "peak_rps": peak,
        "per_instance_rps": draw(st.floats(min_value=0.01, max_value=1e5, allow_nan=False)),
        "burstiness": draw(st.sampled_from(["steady", "periodic", "bursty"])),
    }
    if draw(st.booleans()):
        traffic["mean_rps"] = max(0.001, draw(st.floats(min_value=0.001, max_value=1.0)) * peak)
    if traffic["burstiness"] == "periodic" and draw(st.booleans()):
        traffic["peak_windows"] = [
            {"cron": draw(_cron), "rps": max(0.001, draw(st.floats(min_value=0.01, max_value=1.0)) * peak)}
            | ({"end_cron": draw(_cron)} if draw(st.booleans()) else {})
            for _ in range(draw(st.integers(min_value=1, max_value=3)))
        ]
    workload: dict[str, Any] = {
        "bound": draw(st.sampled_from(["cpu", "memory", "gpu"])),
        "model_kind": draw(st.sampled_from(["classic_ml", "deep_learning", "vision", "llm", "graph"])),
        "pipeline_steps": draw(st.integers(min_value=1, max_value=10)),
    }
    # The model's size is required where the fit decides the type (gpu, memory, llm).
    if workload["bound"] != "cpu" or workload["model_kind"] == "llm" or draw(st.booleans()):
        workload["model_memory_gib"] = draw(st.floats(min_value=0.01, max_value=64))
    if draw(st.booleans()):
        workload["sharding"] = draw(st.sampled_from(["none", "tensor_parallel"]))
    if draw(st.booleans()):
        workload["startup_s"] = draw(st.floats(min_value=1, max_value=7200))
    data: dict[str, Any] = {
        "workload": workload,
        "traffic": traffic,
        "sla": {
            "p99_latency_ms": draw(st.floats(min_value=0.5, max_value=60_000)),
            "availability": draw(st.sampled_from([0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999])),
        },
        "target_utilization": draw(st.floats(min_value=0.1, max_value=0.95)),
        "priority": draw(st.sampled_from(["latency", "balanced", "cost"])),
    }
    if draw(st.booleans()):
        data["az_count"] = draw(st.integers(min_value=2, max_value=6))
    if draw(st.booleans()):
        data["load_tests"] = [
            {
                "instance_type": draw(st.sampled_from(_TESTED_TYPES)),
                "per_instance_rps": draw(st.floats(min_value=0.01, max_value=1e4)),
            }
            | ({"p99_latency_ms": draw(st.floats(min_value=0.5, max_value=60_000))} if draw(st.booleans()) else {})
            for _ in range(draw(st.integers(min_value=1, max_value=3)))
        ]
    elif draw(st.booleans()):
        traffic["tested_instance_type"] = draw(st.sampled_from(_TESTED_TYPES))
    if draw(st.booleans()):
        data["name"] = draw(st.sampled_from(["fraud-xgb", "recs", "a", "llm-chat-1", "X9"]))
    return data


@st.composite
def hosting_profiles(draw: st.DrawFn) -> dict[str, Any]:
    """Random valid profiles with the hosting inputs: processing time, payload sizes, delivery, cold starts.

    Traffic is drawn low as often as high, so that serverless, asynchronous and batch answers come up.
    """
    data = draw(profiles())
    if draw(st.booleans()):
        data["traffic"]["peak_rps"] = draw(st.floats(min_value=0.001, max_value=5))
        data["traffic"].pop("mean_rps", None)
        data["traffic"].pop("peak_windows", None)
        if draw(st.booleans()):
            data["traffic"]["mean_rps"] = max(
                0.001, data["traffic"]["peak_rps"] * draw(st.floats(min_value=0.01, max_value=1))
            )
    workload = data["workload"]
    if "model_memory_gib" in workload and draw(st.booleans()):  # within serverless memory as often as not
        workload["model_memory_gib"] = draw(st.floats(min_value=0.01, max_value=6))
    if draw(st.integers(min_value=0, max_value=4)):
        workload["processing_s"] = draw(
            st.one_of(st.floats(min_value=0.001, max_value=2), st.floats(min_value=0.001, max_value=7200))
        )
    for key in ("payload_kib", "response_kib"):
        if draw(st.booleans()):
            workload[key] = draw(
                st.one_of(st.floats(min_value=0.1, max_value=8192), st.floats(min_value=0.1, max_value=2e6))
            )
    data["sla"]["delivery"] = draw(st.sampled_from(["sync", "async_ok", "batch"]))
    data["sla"]["cold_start_ok"] = draw(st.booleans())
    if draw(st.integers(min_value=0, max_value=2)) == 0:  # a small intermittent CPU model: serverless's ground
        workload.update(bound="cpu", model_memory_gib=draw(st.floats(min_value=0.01, max_value=4.5)))
        workload["processing_s"] = draw(st.floats(min_value=0.001, max_value=1))
        data["traffic"]["peak_rps"] = draw(st.floats(min_value=0.001, max_value=5))
        data["traffic"].pop("mean_rps", None)
        data["traffic"].pop("peak_windows", None)
        data["sla"]["delivery"] = draw(st.sampled_from(["sync", "async_ok"]))
    if draw(st.integers(min_value=0, max_value=2)) == 0:  # a small model sharing an endpoint: inference components
        workload["shares_endpoint"] = True
        if draw(st.booleans()):
            workload.update(bound=draw(st.sampled_from(["cpu", "memory"])))
            workload["model_memory_gib"] = draw(st.floats(min_value=0.01, max_value=2.5))
            rate = data["traffic"].get("per_instance_rps") or draw(st.floats(min_value=1, max_value=1000))
            data["traffic"]["per_instance_rps"] = rate
            data["traffic"]["peak_rps"] = max(0.001, rate * draw(st.floats(min_value=0.0001, max_value=0.6)))
            data["traffic"].pop("mean_rps", None)
            data["traffic"].pop("peak_windows", None)
            if draw(st.booleans()):
                data["traffic"]["mean_rps"] = max(
                    0.001, data["traffic"]["peak_rps"] * draw(st.floats(min_value=0.01, max_value=1))
                )
    return data
