"""Typed models of the hosting table (``rules/tables/hosting.yaml``): its outcome and each mode's documented limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from service.rulebook.strict import Strict

__all__ = [
    "AsynchronousLimits",
    "BatchTransformLimits",
    "HostingLimits",
    "HostingMode",
    "HostingOutcome",
    "InferenceComponentsLimits",
    "RealTimeLimits",
    "ServerlessLimits",
]

HostingMode = Literal["real_time", "serverless", "asynchronous", "inference_components", "batch_transform"]


class HostingOutcome(Strict):
    """A hosting mode, or a refusal (a 422 whose message is the rule's ``because``: the limit and the ways out)."""

    mode: HostingMode | None = None
    refuse: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Problem code of the refusal (kebab-case)."
    )
    field: str | None = Field(default=None, description="The profile field a refusal names.")

    @model_validator(mode="after")
    def _one(self) -> HostingOutcome:
        if (self.mode is None) == (self.refuse is None):
            raise ValueError("a hosting outcome gives either mode or refuse")
        if self.field is not None and self.refuse is None:
            raise ValueError("field goes with refuse")
        return self


class _Limits(Strict):
    source: str = Field(min_length=10, description="Where the limits are documented (botocore shape, AWS page).")


class RealTimeLimits(_Limits):
    max_processing_s: float = Field(gt=0, description="The container must answer InvokeEndpoint within this.")
    max_payload_kib: float = Field(gt=0, description="InvokeEndpoint request body limit, KiB.")


class ServerlessLimits(_Limits):
    memory_sizes_mb: list[int] = Field(min_length=1, description="The MemorySizeInMB values allowed.")
    max_concurrency: int = Field(ge=1, description="MaxConcurrency's upper bound per endpoint.")
    min_max_concurrency: int = Field(
        ge=1,
        description="The least MaxConcurrency planned: requests above it are throttled, and a few arrive together "
        "even at low mean rates.",
    )
    max_payload_kib: float = Field(gt=0, description="Request and response payload limit, KiB.")
    max_processing_s: float = Field(gt=0, description="Invocation timeout, s.")
    memory_headroom: float = Field(
        ge=1.0, le=4.0, description="Model memory x this must fit MemorySizeInMB (the serving runtime beside it)."
    )
    usd_per_gb_second: float = Field(gt=0, description="On-demand compute price per GB-second.")
    usd_per_gb_processed: float = Field(ge=0, description="Data processed (in and out), per GB.")
    usd_per_gb_second_provisioned: float = Field(gt=0, description="Provisioned concurrency, per GB-second held.")
    price_source: str = Field(min_length=10, description="Where the prices come from, and whether illustrative.")


class AsynchronousLimits(_Limits):
    max_payload_kib: float = Field(gt=0, description="Request payload limit (through S3), KiB.")
    max_processing_s: float = Field(gt=0, description="Longest processing time of one request, s.")
    backlog_target_per_instance: float = Field(
        gt=0, description="TargetValue of ApproximateBacklogSizePerInstance (queued requests per instance)."
    )


class InferenceComponentsLimits(_Limits):
    max_peak_instances: float = Field(
        gt=0,
        description="The largest peak, in instances' worth at the stated rate (traffic.peak_instances), that still "
        "counts as a small model worth sharing an instance.",
    )
    max_model_memory_gib: float = Field(gt=0, description="The largest model that counts as small, GiB.")
    cpu_cores_per_copy: float = Field(
        ge=0.25, description="NumberOfCpuCoresRequired of one copy (botocore: at least 0.25)."
    )
    min_memory_mb: int = Field(ge=128, description="The least MinMemoryRequiredInMb of a copy (botocore: 128).")


class BatchTransformLimits(_Limits):
    max_payload_mb: int = Field(ge=1, description="MaxPayloadInMB's upper bound (and of MaxConcurrentTransforms x it).")
    max_invocation_s: int = Field(ge=1, description="ModelClientConfig.InvocationsTimeoutInSeconds's upper bound.")


class HostingLimits(Strict):
    """The documented limits each mode is checked against; the rules' thresholds are the same numbers."""

    real_time: RealTimeLimits
    serverless: ServerlessLimits
    asynchronous: AsynchronousLimits
    batch_transform: BatchTransformLimits
    inference_components: InferenceComponentsLimits | None = Field(
        default=None, description="Without it no rule may choose inference_components (nothing to size copies by)."
    )
