"""The hosting table's limits are botocore's and AWS's documented ones, and its rules test the same numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.session
import pytest

from service.rulebook.hosting_models import HostingLimits
from service.rulebook.loader import load_ruleset
from service.rulebook.models import Ops

RULES = Path(__file__).resolve().parents[2] / "rules"
TABLE = load_ruleset(RULES).tables["hosting"]
LIMITS: HostingLimits = TABLE.limits
_session = botocore.session.get_session()
SAGEMAKER = _session.get_service_model("sagemaker")
RUNTIME = _session.get_service_model("sagemaker-runtime")
MIB = 1024 * 1024


def _rule(rule_id: str) -> Any:
    return next(r for r in TABLE.rules if r.id == rule_id)


def _bound(rule_id: str, field: str) -> float:
    cond = _rule(rule_id).when[field]
    assert isinstance(cond, Ops)
    value = next(v for v in (cond.gt, cond.gte, cond.lt, cond.lte) if v is not None)
    return float(value)


def test_real_time_limits_are_invoke_endpoints() -> None:
    op = RUNTIME.operation_model("InvokeEndpoint")
    assert op.input_shape.members["Body"].metadata["max"] == LIMITS.real_time.max_payload_kib * 1024
    assert op.output_shape.members["Body"].metadata["max"] == LIMITS.real_time.max_payload_kib * 1024
    assert "respond to requests within 60 seconds" in op.documentation
    assert LIMITS.real_time.max_processing_s == 60


def test_serverless_limits_are_botocores() -> None:
    shape = SAGEMAKER.shape_for("ProductionVariantServerlessConfig").members
    memory = shape["MemorySizeInMB"].metadata
    assert LIMITS.serverless.memory_sizes_mb == list(range(memory["min"], memory["max"] + 1, 1024))
    assert shape["MaxConcurrency"].metadata == {"min": 1, "max": LIMITS.serverless.max_concurrency}
    assert shape["ProvisionedConcurrency"].metadata["max"] == LIMITS.serverless.max_concurrency
    assert "ILLUSTRATIVE" in LIMITS.serverless.price_source


def test_asynchronous_limits_are_botocores() -> None:
    timeout = RUNTIME.operation_model("InvokeEndpointAsync").input_shape.members["InvocationTimeoutSeconds"]
    assert timeout.metadata["max"] == LIMITS.asynchronous.max_processing_s
    assert LIMITS.asynchronous.max_payload_kib == 1024 * 1024  # 1 GB (async-inference.html)


def test_batch_transform_limits_are_botocores() -> None:
    request = SAGEMAKER.shape_for("CreateTransformJobRequest")
    assert f"{LIMITS.batch_transform.max_payload_mb} MB" in request.members["MaxPayloadInMB"].documentation
    client = SAGEMAKER.shape_for("ModelClientConfig").members["InvocationsTimeoutInSeconds"]
    assert client.metadata["max"] == LIMITS.batch_transform.max_invocation_s


def test_inference_component_limits_are_botocores() -> None:
    ic = LIMITS.inference_components
    assert ic is not None
    needs = SAGEMAKER.shape_for("InferenceComponentComputeResourceRequirements").members
    assert needs["NumberOfCpuCoresRequired"].metadata["min"] == ic.cpu_cores_per_copy
    assert needs["MinMemoryRequiredInMb"].metadata["min"] == ic.min_memory_mb
    assert needs["NumberOfAcceleratorDevicesRequired"].metadata["min"] == 1  # why GPU models are not shared here


@pytest.mark.parametrize(
    ("rule_id", "field", "limit"),
    [
        ("sync-processing-beyond-real-time-limit", "workload.processing_s", LIMITS.real_time.max_processing_s),
        ("sync-payload-beyond-real-time-limit", "workload.largest_payload_kib", LIMITS.real_time.max_payload_kib),
        ("async-large-payload", "workload.largest_payload_kib", LIMITS.real_time.max_payload_kib),
        ("async-processing-beyond-limit", "workload.processing_s", LIMITS.asynchronous.max_processing_s),
        ("async-payload-beyond-limit", "workload.largest_payload_kib", LIMITS.asynchronous.max_payload_kib),
        ("serverless-payload-too-large", "workload.largest_payload_kib", LIMITS.serverless.max_payload_kib),
        ("serverless-intermittent", "workload.processing_s", LIMITS.serverless.max_processing_s),
        ("serverless-intermittent", "workload.concurrency_peak", LIMITS.serverless.max_concurrency),
        (
            "serverless-intermittent",
            "workload.model_memory_gib",
            max(LIMITS.serverless.memory_sizes_mb) / 1024 / LIMITS.serverless.memory_headroom,
        ),
        (
            "inference-components-small-shared-model",
            "traffic.peak_instances",
            LIMITS.inference_components.max_peak_instances if LIMITS.inference_components else 0,
        ),
        (
            "inference-components-small-shared-model",
            "workload.model_memory_gib",
            LIMITS.inference_components.max_model_memory_gib if LIMITS.inference_components else 0,
        ),
    ],
)
def test_rule_thresholds_are_the_limits(rule_id: str, field: str, limit: float) -> None:
    assert _bound(rule_id, field) == limit


def test_serverless_is_never_chosen_for_gpu_models() -> None:
    assert "gpu" not in _rule("serverless-intermittent").when["workload.bound"]


def test_inference_components_are_never_chosen_for_gpu_models() -> None:
    assert "gpu" not in _rule("inference-components-small-shared-model").when["workload.bound"]
