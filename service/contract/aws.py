"""AWS request payloads, field for field.

Each struct encodes to the exact keyword arguments of one boto3 call, so a caller can pass it
as ``client.put_scaling_policy(**payload)``. Field names are AWS's (PascalCase) on purpose.
Optional fields left at ``None`` are omitted from the JSON.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "CreateEndpointConfig",
    "Metric",
    "MetricAlarm",
    "MetricDataQuery",
    "MetricDimension",
    "MetricStat",
    "PredefinedMetricSpecification",
    "ProductionVariant",
    "RegisterScalableTarget",
    "RoutingConfig",
    "ScalableTargetAction",
    "ScalingPolicy",
    "ScheduledAction",
    "StepAdjustment",
    "StepScalingPolicyConfiguration",
    "TargetTrackingScalingPolicyConfiguration",
]

SERVICE_NAMESPACE: Final = "sagemaker"
SCALABLE_DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"


class _Payload(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Base for AWS payloads."""


class RegisterScalableTarget(_Payload):
    """application-autoscaling ``register_scalable_target``."""

    ServiceNamespace: Literal["sagemaker"]
    ResourceId: str
    ScalableDimension: Literal["sagemaker:variant:DesiredInstanceCount"]
    MinCapacity: int
    MaxCapacity: int


class PredefinedMetricSpecification(_Payload):
    PredefinedMetricType: Literal["SageMakerVariantInvocationsPerInstance"]


class TargetTrackingScalingPolicyConfiguration(_Payload):
    TargetValue: float
    PredefinedMetricSpecification: PredefinedMetricSpecification
    ScaleInCooldown: int
    ScaleOutCooldown: int
    DisableScaleIn: bool = False


class StepAdjustment(_Payload):
    """Bounds are offsets from the alarm threshold, in the alarm metric's unit."""

    ScalingAdjustment: int
    MetricIntervalLowerBound: float | None = None
    MetricIntervalUpperBound: float | None = None


class StepScalingPolicyConfiguration(_Payload):
    AdjustmentType: Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"]
    StepAdjustments: list[StepAdjustment]
    Cooldown: int
    MetricAggregationType: Literal["Average", "Minimum", "Maximum"]
    MinAdjustmentMagnitude: int | None = None


class ScalingPolicy(_Payload):
    """application-autoscaling ``put_scaling_policy``."""

    PolicyName: str
    ServiceNamespace: Literal["sagemaker"]
    ResourceId: str
    ScalableDimension: Literal["sagemaker:variant:DesiredInstanceCount"]
    PolicyType: Literal["TargetTrackingScaling", "StepScaling"]
    TargetTrackingScalingPolicyConfiguration: TargetTrackingScalingPolicyConfiguration | None = None
    StepScalingPolicyConfiguration: StepScalingPolicyConfiguration | None = None


class ScalableTargetAction(_Payload):
    MinCapacity: int
    MaxCapacity: int


class ScheduledAction(_Payload):
    """application-autoscaling ``put_scheduled_action``."""

    ServiceNamespace: Literal["sagemaker"]
    ScheduledActionName: str
    ResourceId: str
    ScalableDimension: Literal["sagemaker:variant:DesiredInstanceCount"]
    Schedule: str
    ScalableTargetAction: ScalableTargetAction
    Timezone: str | None = None


class MetricDimension(_Payload):
    Name: str
    Value: str


class Metric(_Payload):
    Namespace: str
    MetricName: str
    Dimensions: list[MetricDimension]


class MetricStat(_Payload):
    Metric: Metric
    Period: int
    Stat: str
    Unit: str | None = None


class MetricDataQuery(_Payload):
    """One line of a metric-math alarm: a metric (``MetricStat``) or an ``Expression`` over the others."""

    Id: str
    MetricStat: MetricStat | None = None
    Expression: str | None = None
    Label: str | None = None
    ReturnData: bool | None = None


class MetricAlarm(_Payload, kw_only=True):
    """cloudwatch ``put_metric_alarm``.

    Either one metric (``Namespace``, ``MetricName``, ``Dimensions``, ``Period`` and a statistic) or
    metric math (``Metrics``: the metrics and the one expression whose value is compared).

    For step-scaling alarms, ``AlarmActions`` holds the placeholder ``{policy_arn:POLICY_NAME}``:
    replace it with the ``PolicyARN`` that ``put_scaling_policy`` returned for that policy.
    """

    AlarmName: str
    AlarmDescription: str
    Namespace: str | None = None
    MetricName: str | None = None
    Dimensions: list[MetricDimension] | None = None
    Period: int | None = None
    EvaluationPeriods: int
    DatapointsToAlarm: int
    Threshold: float
    ComparisonOperator: Literal[
        "GreaterThanOrEqualToThreshold",
        "GreaterThanThreshold",
        "LessThanThreshold",
        "LessThanOrEqualToThreshold",
    ]
    TreatMissingData: Literal["breaching", "notBreaching", "ignore", "missing"]
    Statistic: Literal["SampleCount", "Average", "Sum", "Minimum", "Maximum"] | None = None
    ExtendedStatistic: str | None = None
    Unit: str | None = None
    AlarmActions: (
        Annotated[
            list[str],
            Meta(
                description="For step-scaling alarms, the placeholder {policy_arn:POLICY_NAME}: call "
                "put_scaling_policy first and put the PolicyARN it returns for POLICY_NAME in its place."
            ),
        ]
        | None
    ) = None
    Metrics: list[MetricDataQuery] | None = None


class RoutingConfig(_Payload):
    RoutingStrategy: Literal["LEAST_OUTSTANDING_REQUESTS", "RANDOM"]


class ProductionVariant(_Payload):
    VariantName: str
    ModelName: str
    InstanceType: str
    InitialInstanceCount: int
    ModelDataDownloadTimeoutInSeconds: int
    ContainerStartupHealthCheckTimeoutInSeconds: int
    RoutingConfig: RoutingConfig
    VolumeSizeInGB: int | None = None


class CreateEndpointConfig(_Payload):
    """sagemaker ``create_endpoint_config``.

    ``ModelName`` is the name of the model created with ``create_model`` (the advisor proposes
    ``<endpoint>-model``; use your own).
    """

    EndpointConfigName: str
    ProductionVariants: list[ProductionVariant]
