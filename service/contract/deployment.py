"""The response's ``deployment`` part: how a new model version is rolled out, and the quota it needs.

The ``aws`` structs encode to botocore's shapes field for field (``UpdateEndpoint``'s ``DeploymentConfig``,
``UpdateInferenceComponent``'s ``InferenceComponentDeploymentConfig``); optional fields left at ``None`` are omitted.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "AutoRollbackAlarm",
    "AutoRollbackConfig",
    "BlueGreenUpdatePolicy",
    "CapacitySize",
    "Deployment",
    "DeploymentAws",
    "DeploymentConfig",
    "InferenceComponentCapacitySize",
    "InferenceComponentDeploymentConfig",
    "InferenceComponentRollingUpdatePolicy",
    "Quota",
    "RegionQuota",
    "RollingUpdatePolicy",
    "TrafficRoutingConfig",
]


class _Payload(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Base for AWS payloads."""


class CapacitySize(_Payload):
    Type: Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"]
    Value: int


class TrafficRoutingConfig(_Payload):
    Type: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"]
    WaitIntervalInSeconds: int
    CanarySize: CapacitySize | None = None
    LinearStepSize: CapacitySize | None = None


class BlueGreenUpdatePolicy(_Payload):
    TrafficRoutingConfiguration: TrafficRoutingConfig
    TerminationWaitInSeconds: int | None = None
    MaximumExecutionTimeoutInSeconds: int | None = None


class RollingUpdatePolicy(_Payload):
    MaximumBatchSize: CapacitySize
    WaitIntervalInSeconds: int
    MaximumExecutionTimeoutInSeconds: int | None = None
    RollbackMaximumBatchSize: CapacitySize | None = None


class AutoRollbackAlarm(_Payload):
    AlarmName: str


class AutoRollbackConfig(_Payload):
    """The health alarms (errors, latency) whose alarm state rolls the deployment back: 1-10 of them."""

    Alarms: list[AutoRollbackAlarm]


class DeploymentConfig(_Payload):
    """sagemaker ``update_endpoint``'s ``DeploymentConfig``: blue/green or rolling, with automatic rollback."""

    BlueGreenUpdatePolicy: BlueGreenUpdatePolicy | None = None
    RollingUpdatePolicy: RollingUpdatePolicy | None = None
    AutoRollbackConfiguration: AutoRollbackConfig | None = None


class InferenceComponentCapacitySize(_Payload):
    Type: Literal["COPY_COUNT", "CAPACITY_PERCENT"]
    Value: int


class InferenceComponentRollingUpdatePolicy(_Payload):
    MaximumBatchSize: InferenceComponentCapacitySize
    WaitIntervalInSeconds: int
    MaximumExecutionTimeoutInSeconds: int | None = None
    RollbackMaximumBatchSize: InferenceComponentCapacitySize | None = None


class InferenceComponentDeploymentConfig(_Payload):
    """sagemaker ``update_inference_component``'s ``DeploymentConfig``: a rolling update is required."""

    RollingUpdatePolicy: InferenceComponentRollingUpdatePolicy
    AutoRollbackConfiguration: AutoRollbackConfig | None = None


class DeploymentAws(_Payload):
    deployment_config: Annotated[
        DeploymentConfig | None,
        Meta(description="UpdateEndpoint's DeploymentConfig (endpoints: real-time, serverless, asynchronous)."),
    ] = None
    inference_component_deployment_config: Annotated[
        InferenceComponentDeploymentConfig | None,
        Meta(description="UpdateInferenceComponent's DeploymentConfig (inference components)."),
    ] = None


class RegionQuota(msgspec.Struct, kw_only=True, gc=False):
    region: str
    steady: int
    during_deployment: int


class Quota(msgspec.Struct, kw_only=True, gc=False):
    """Instances of one type the account's per-Region quota ('<type> for endpoint usage') must allow."""

    instance_type: str
    quota_name: Annotated[str, Meta(description="The Service Quotas name of the quota to check.")]
    steady: Annotated[int, Meta(description="The autoscaling maximum: what scaling may reach.")]
    during_deployment: Annotated[
        int, Meta(description="steady plus the deployment's surge at that maximum (a second fleet, or one batch).")
    ]
    per_region: Annotated[
        list[RegionQuota], Meta(description="The same figures for each Region of the plan (quotas are per Region).")
    ]
    steps: list[str]


class Deployment(msgspec.Struct, kw_only=True, gc=False):
    strategy: Literal["blue_green", "rolling"]
    traffic: Literal["all_at_once", "canary", "linear"] | None
    rule_id: str
    reason: str
    steps: list[str]
    aws: DeploymentAws
    quota: Annotated[
        Quota | None, Meta(description="None for serverless: AWS places the capacity (concurrency quotas apply).")
    ] = None
