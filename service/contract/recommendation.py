"""The response body: a recommendation, every part with the rule that decided it and why."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from service.contract.aws import (
    CreateEndpointConfig,
    CreateInferenceComponent,
    CreateTransformJob,
    MetricAlarm,
    RegisterScalableTarget,
    ScalingPolicy,
    ScheduledAction,
)
from service.contract.deployment import Deployment
from service.contract.llm import LlmAnswer
from service.contract.regions import MultiRegionCost, MultiRegionPlan

__all__ = [
    "Alternative",
    "AvailabilityPlan",
    "AwsScaling",
    "Capacity",
    "CostEstimate",
    "ExplanationEntry",
    "Family",
    "Hosting",
    "HostingAws",
    "HostingMode",
    "HostingRejection",
    "InstanceChoice",
    "Monitoring",
    "MonitoringRationale",
    "MonitoringTool",
    "Recommendation",
    "RulesetRef",
    "ScalingMethod",
    "ScalingPlan",
    "ThroughputBasis",
    "ThroughputSource",
    "UnavailableMethod",
    "Warning",
]

Family = Literal["c", "m", "r", "g", "p", "inf"]
ScalingMethod = Literal["target_tracking", "step", "scheduled"]
ThroughputSource = Literal["load_test", "extrapolated", "assumed"]
HostingMode = Literal["real_time", "serverless", "asynchronous", "inference_components", "batch_transform"]


class _Out(msgspec.Struct, kw_only=True, gc=False):
    """Base for response parts."""


class RulesetRef(_Out):
    version: str
    sha256: str


class Alternative(_Out):
    instance_type: str
    rejected_because: str


class InstanceChoice(_Out):
    family: Family
    instance_type: str
    rule_id: str
    reason: str
    sizing_rule_id: str
    vcpus: int
    memory_gib: float
    accelerator: str | None
    accelerator_count: int
    accelerator_memory_gib: float
    alternatives: list[Alternative]
    sharding: Literal["none", "tensor_parallel", "host_memory"] = "host_memory"
    tensor_parallel_degree: int | None = None


class ThroughputBasis(_Out):
    """Where the per-instance rate the counts rest on comes from."""

    instance_type: str
    per_instance_rps: float
    source: ThroughputSource
    factor: float
    tested_instance_type: str | None = None


class Capacity(_Out):
    throughput_basis: ThroughputBasis
    base_instances: int
    az_safe_instances: int
    instances: int
    min_instances: int
    max_instances: int
    per_az: list[int]
    utilization_at_peak: float
    utilization_at_peak_after_az_loss: float | None
    formula: str
    steps: list[str]


class AwsScaling(_Out):
    register_scalable_target: RegisterScalableTarget
    scaling_policies: list[ScalingPolicy]
    scheduled_actions: list[ScheduledAction]
    alarms: list[MetricAlarm]


class UnavailableMethod(_Out):
    method: str
    reason: str


class ScalingPlan(_Out):
    method: ScalingMethod
    rule_id: str
    reason: str
    target_value: float | None
    formula: str | None
    aws: AwsScaling
    unavailable_methods: list[UnavailableMethod]


class AvailabilityPlan(_Out):
    multi_az: bool
    az_count: int
    survives_az_loss: bool
    degraded_utilization: float
    rule_id: str
    reason: str
    mode_note: Annotated[
        str | None,
        Meta(
            description="What availability means for the hosting mode (a queue absorbs an AZ loss as delay; "
            "serverless capacity is placed by AWS)."
        ),
    ] = None
    multi_region: Annotated[
        MultiRegionPlan | None,
        Meta(description="Whether one Region's commitment covers the objective; if not, the second Region's plan."),
    ] = None


class MonitoringTool(_Out):
    tool: Literal["cloudwatch", "x-ray", "cloudtrail"]
    why: str
    rule_id: str


class MonitoringRationale(_Out):
    alarm_name: str
    rule_id: str
    reason: str


class Monitoring(_Out):
    alarms: list[MetricAlarm]
    tools: list[MonitoringTool]
    rationale: list[MonitoringRationale]


class CostEstimate(_Out):
    usd_per_hour: Annotated[float | None, Meta(description="The fleet at the peak, per hour.")]
    usd_per_month: Annotated[
        float | None,
        Meta(
            description="Deprecated: the peak fleet around the clock (= usd_per_month_peak); use "
            "usd_per_month_expected for what the emitted plan will cost.",
            extra_json_schema={"deprecated": True},
        ),
    ]
    usd_per_month_expected: Annotated[
        float | None,
        Meta(
            description="What the emitted payloads will run: the minimum fleet outside peaks, scheduled windows at "
            "their capacity for their hours, the peak fleet for a share mean_rps/peak_rps of the month."
        ),
    ]
    usd_per_month_min: Annotated[float | None, Meta(description="The minimum fleet (MinCapacity) all month.")]
    usd_per_month_peak: Annotated[float | None, Meta(description="The fleet at the peak all month.")]
    usd_per_million_requests: Annotated[
        float | None,
        Meta(description="The expected fleet's cost per million requests at mean traffic (peak without it)."),
    ]
    price_as_of: str
    region: str
    basis: str
    formula: str
    prices_known: Annotated[
        bool,
        Meta(
            description="False when the profile's region is not the catalog's: the USD figures are then null, "
            "not guessed from another Region's prices."
        ),
    ] = True
    multi_region: Annotated[
        MultiRegionCost | None, Meta(description="The second Region's cost, when the plan has one.")
    ] = None


class HostingAws(_Out):
    """The requests that create the hosting: an endpoint configuration (with, for inference_components, the
    model's component on it), or (batch_transform) a transform job."""

    create_endpoint_config: CreateEndpointConfig | None = None
    create_transform_job: CreateTransformJob | None = None
    create_inference_component: CreateInferenceComponent | None = None


class HostingRejection(_Out):
    mode: HostingMode
    reason: str


class Hosting(_Out):
    mode: HostingMode
    reason: str
    startup_s: float
    startup_basis: Literal["profile", "estimate"]
    aws: HostingAws
    rule_id: Annotated[
        str | None, Meta(description="The hosting table's rule that chose the mode (none: no hosting table).")
    ] = None
    rejected: Annotated[list[HostingRejection], Meta(description="Every other mode, with why it was not chosen.")] = (
        msgspec.field(default_factory=list)
    )
    steps: Annotated[
        list[str], Meta(description="The mode's own arithmetic (memory size, concurrency, job hours).")
    ] = msgspec.field(default_factory=list)


class ExplanationEntry(_Out):
    table: str
    rule_id: str
    matched: dict[str, Any]
    outcome: dict[str, Any]


class Warning(_Out):
    code: str
    message: str
    rule_id: str | None = None


class Recommendation(_Out):
    ruleset: RulesetRef
    hosting: Hosting
    instance: Annotated[InstanceChoice | None, Meta(description="None for serverless: AWS picks the compute.")]
    capacity: Annotated[Capacity | None, Meta(description="None for serverless: no instances or per-AZ split.")]
    scaling: Annotated[
        ScalingPlan | None,
        Meta(description="None where nothing scales: serverless without provisioned concurrency, batch transform."),
    ]
    availability: AvailabilityPlan
    monitoring: Monitoring
    cost: CostEstimate
    explanation: list[ExplanationEntry]
    warnings: list[Warning]
    profile_name: str | None = None
    llm: Annotated[
        LlmAnswer | None,
        Meta(description="An LLM described by workload.llm, in its own units: weights, KV cache, streams, container."),
    ] = None
    deployment: Annotated[
        Deployment | None,
        Meta(description="How a new model version is rolled out, and the quota it needs (none for batch transform)."),
    ] = None
