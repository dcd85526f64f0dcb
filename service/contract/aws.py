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
    "AsyncInferenceClientConfig",
    "AsyncInferenceConfig",
    "AsyncInferenceOutputConfig",
    "CreateEndpointConfig",
    "CreateInferenceComponent",
    "CreateTransformJob",
    "CustomizedMetricSpecification",
    "InferenceComponentComputeResourceRequirements",
    "ManagedInstanceScaling",
    "Metric",
    "MetricAlarm",
    "MetricDataQuery",
    "MetricDimension",
    "MetricStat",
    "PredefinedMetricSpecification",
    "ProductionVariant",
    "ProductionVariantServerlessConfig",
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
ScalableDimension = Literal[
    "sagemaker:variant:DesiredInstanceCount",
    "sagemaker:variant:DesiredProvisionedConcurrency",
    "sagemaker:inference-component:DesiredCopyCount",
]
PredefinedMetricType = Literal[
    "SageMakerVariantInvocationsPerInstance",
    "SageMakerVariantProvisionedConcurrencyUtilization",
    "SageMakerInferenceComponentInvocationsPerCopy",
    "SageMakerVariantConcurrentRequestsPerModelHighResolution",
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution",
]


class _Payload(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Base for AWS payloads."""


class RegisterScalableTarget(_Payload):
    """application-autoscaling ``register_scalable_target``."""

    ServiceNamespace: Literal["sagemaker"]
    ResourceId: str
    ScalableDimension: ScalableDimension
    MinCapacity: int
    MaxCapacity: int


class PredefinedMetricSpecification(_Payload):
    PredefinedMetricType: PredefinedMetricType


class TargetTrackingMetricDimension(_Payload):
    Name: str
    Value: str


class CustomizedMetricSpecification(_Payload):
    """A CloudWatch metric to track instead of a predefined one (e.g. asynchronous inference's backlog)."""

    MetricName: str
    Namespace: str
    Dimensions: list[TargetTrackingMetricDimension]
    Statistic: Literal["Average", "Minimum", "Maximum", "SampleCount", "Sum"]


class TargetTrackingScalingPolicyConfiguration(_Payload):
    """Exactly one of ``PredefinedMetricSpecification`` and ``CustomizedMetricSpecification``."""

    TargetValue: float
    ScaleInCooldown: int
    ScaleOutCooldown: int
    PredefinedMetricSpecification: PredefinedMetricSpecification | None = None
    CustomizedMetricSpecification: CustomizedMetricSpecification | None = None
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
    ScalableDimension: ScalableDimension
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


class ManagedInstanceScaling(_Payload):
    """The instance bounds an endpoint of inference components scales between as copies are added or removed."""

    Status: Literal["ENABLED", "DISABLED"]
    MinInstanceCount: int
    MaxInstanceCount: int


class ProductionVariantServerlessConfig(_Payload):
    """A serverless variant: memory (1024-6144 MB in 1 GB steps), concurrency 1-200 (botocore)."""

    MemorySizeInMB: int
    MaxConcurrency: int
    ProvisionedConcurrency: int | None = None


class ProductionVariant(_Payload):
    """An instance variant (type, count, timeouts, routing), a serverless one (``ServerlessConfig`` only), or one
    that hosts inference components (no ``ModelName``: each component names its model; ``ManagedInstanceScaling``)."""

    VariantName: str
    ModelName: str | None = None
    InstanceType: str | None = None
    InitialInstanceCount: int | None = None
    ModelDataDownloadTimeoutInSeconds: int | None = None
    ContainerStartupHealthCheckTimeoutInSeconds: int | None = None
    RoutingConfig: RoutingConfig | None = None
    VolumeSizeInGB: int | None = None
    ServerlessConfig: ProductionVariantServerlessConfig | None = None
    ManagedInstanceScaling: ManagedInstanceScaling | None = None


class AsyncInferenceNotificationConfig(_Payload):
    SuccessTopic: str
    ErrorTopic: str


class AsyncInferenceOutputConfig(_Payload):
    S3OutputPath: str
    S3FailurePath: str
    NotificationConfig: AsyncInferenceNotificationConfig | None = None


class AsyncInferenceClientConfig(_Payload):
    MaxConcurrentInvocationsPerInstance: int


class AsyncInferenceConfig(_Payload):
    """Placeholders in angle brackets (``<bucket>``, ``<account-id>``) are yours to fill in."""

    OutputConfig: AsyncInferenceOutputConfig
    ClientConfig: AsyncInferenceClientConfig


class CreateEndpointConfig(_Payload):
    """sagemaker ``create_endpoint_config``.

    ``ModelName`` is the name of the model created with ``create_model`` (the advisor proposes
    ``<endpoint>-model``; use your own).
    """

    EndpointConfigName: str
    ProductionVariants: list[ProductionVariant]
    AsyncInferenceConfig: AsyncInferenceConfig | None = None
    ExecutionRoleArn: str | None = None


class S3DataSource(_Payload):
    S3DataType: Literal["S3Prefix", "ManifestFile"]
    S3Uri: str


class TransformDataSource(_Payload):
    S3DataSource: S3DataSource


class TransformInput(_Payload):
    DataSource: TransformDataSource
    SplitType: Literal["None", "Line", "RecordIO", "TFRecord"]
    ContentType: str | None = None


class TransformOutput(_Payload):
    S3OutputPath: str
    AssembleWith: Literal["None", "Line"] | None = None


class TransformResources(_Payload):
    InstanceType: str
    InstanceCount: int


class ModelClientConfig(_Payload):
    InvocationsTimeoutInSeconds: int
    InvocationsMaxRetries: int


class CreateTransformJob(_Payload):
    """sagemaker ``create_transform_job``: one run of the batch job (give each run its own name)."""

    TransformJobName: str
    ModelName: str
    MaxConcurrentTransforms: int
    MaxPayloadInMB: int
    BatchStrategy: Literal["MultiRecord", "SingleRecord"]
    ModelClientConfig: ModelClientConfig
    TransformInput: TransformInput
    TransformOutput: TransformOutput
    TransformResources: TransformResources


class InferenceComponentComputeResourceRequirements(_Payload):
    """What one copy reserves on an instance: CPU cores (at least 0.25) or whole accelerator devices, and memory."""

    MinMemoryRequiredInMb: int
    NumberOfCpuCoresRequired: float | None = None
    NumberOfAcceleratorDevicesRequired: float | None = None


class InferenceComponentStartupParameters(_Payload):
    ModelDataDownloadTimeoutInSeconds: int
    ContainerStartupHealthCheckTimeoutInSeconds: int


class InferenceComponentAvailabilityZoneBalance(_Payload):
    EnforcementMode: Literal["PERMISSIVE"]
    MaxImbalance: int


class InferenceComponentSchedulingConfig(_Payload):
    PlacementStrategy: Literal["SPREAD", "BINPACK"]
    AvailabilityZoneBalance: InferenceComponentAvailabilityZoneBalance | None = None


class InferenceComponentSpecification(_Payload):
    ModelName: str
    StartupParameters: InferenceComponentStartupParameters
    ComputeResourceRequirements: InferenceComponentComputeResourceRequirements
    SchedulingConfig: InferenceComponentSchedulingConfig | None = None


class InferenceComponentRuntimeConfig(_Payload):
    CopyCount: int


class CreateInferenceComponent(_Payload):
    """sagemaker ``create_inference_component``: one model's copies on an endpoint whose instances it shares."""

    InferenceComponentName: str
    EndpointName: str
    VariantName: str
    Specification: InferenceComponentSpecification
    RuntimeConfig: InferenceComponentRuntimeConfig
