"""AWS requests of the hosting modes other than real-time: serverless, asynchronous, inference components and batch
transform.

Field names and bounds are botocore's (sagemaker 2017-07-24, application-autoscaling 2016-02-06, cloudwatch);
the asynchronous scaling follows https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html.
Placeholders in angle brackets (``<bucket>``, ``<region>``, ``<account-id>``) are the caller's to fill in.
"""

from __future__ import annotations

import math
from typing import Final

from service.contract.aws import (
    SERVICE_NAMESPACE,
    AsyncInferenceClientConfig,
    AsyncInferenceConfig,
    AsyncInferenceNotificationConfig,
    AsyncInferenceOutputConfig,
    CreateEndpointConfig,
    CreateInferenceComponent,
    CreateTransformJob,
    CustomizedMetricSpecification,
    InferenceComponentAvailabilityZoneBalance,
    InferenceComponentComputeResourceRequirements,
    InferenceComponentRuntimeConfig,
    InferenceComponentSchedulingConfig,
    InferenceComponentSpecification,
    InferenceComponentStartupParameters,
    ManagedInstanceScaling,
    MetricAlarm,
    MetricDimension,
    ModelClientConfig,
    ProductionVariant,
    ProductionVariantServerlessConfig,
    RegisterScalableTarget,
    RoutingConfig,
    S3DataSource,
    ScalingPolicy,
    StepAdjustment,
    StepScalingPolicyConfiguration,
    TargetTrackingMetricDimension,
    TargetTrackingScalingPolicyConfiguration,
    TransformDataSource,
    TransformInput,
    TransformOutput,
    TransformResources,
)
from service.engine.aws_alarms import policy_arn_placeholder
from service.engine.aws_payloads import VARIANT_NAME, predefined_target_tracking, resource_id

__all__ = [
    "COPY_COUNT_DIMENSION",
    "PROVISIONED_CONCURRENCY_DIMENSION",
    "async_endpoint_config",
    "async_scaling",
    "component_endpoint_config",
    "component_name",
    "component_scaling",
    "inference_component",
    "serverless_endpoint_config",
    "serverless_scaling",
    "transform_job",
]

PROVISIONED_CONCURRENCY_DIMENSION: Final = "sagemaker:variant:DesiredProvisionedConcurrency"
COPY_COUNT_DIMENSION: Final = "sagemaker:inference-component:DesiredCopyCount"
# async-inference-autoscale.html: the step policy that starts the first instance while the backlog waits uses a
# 300 s cooldown; a longer warm-up raises it, since the alarm stays at 1 until the first instance serves and would
# otherwise add a second one meanwhile.
_FROM_ZERO_COOLDOWN_S: Final = 300


def serverless_endpoint_config(
    endpoint: str, memory_mb: int, max_concurrency: int, provisioned: int | None
) -> CreateEndpointConfig:
    """``create_endpoint_config`` with one serverless variant (no instance type, count or AZ split)."""
    variant = ProductionVariant(
        VariantName=VARIANT_NAME,
        ModelName=f"{endpoint}-model"[:63],
        ServerlessConfig=ProductionVariantServerlessConfig(
            MemorySizeInMB=memory_mb, MaxConcurrency=max_concurrency, ProvisionedConcurrency=provisioned
        ),
    )
    return CreateEndpointConfig(EndpointConfigName=f"{endpoint}-config"[:63], ProductionVariants=[variant])


def serverless_scaling(
    endpoint: str, provisioned: int, max_concurrency: int, target: float, cooldowns: tuple[int, int]
) -> tuple[RegisterScalableTarget, ScalingPolicy]:
    """Provisioned concurrency scaled by target tracking on its utilisation (a fraction, e.g. 0.7)."""
    register = RegisterScalableTarget(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension=PROVISIONED_CONCURRENCY_DIMENSION,
        MinCapacity=provisioned,
        MaxCapacity=max_concurrency,
    )
    policy = predefined_target_tracking(
        f"{endpoint}-provisioned-concurrency-target-tracking",
        resource_id(endpoint),
        PROVISIONED_CONCURRENCY_DIMENSION,
        "SageMakerVariantProvisionedConcurrencyUtilization",
        target,
        cooldowns,
    )
    return register, policy


def async_endpoint_config(base: CreateEndpointConfig, endpoint: str, per_instance: int) -> CreateEndpointConfig:
    """The instance endpoint configuration with ``AsyncInferenceConfig``: results and failures in S3, SNS topics."""
    topic = f"arn:aws:sns:<region>:<account-id>:{endpoint}"
    return CreateEndpointConfig(
        EndpointConfigName=base.EndpointConfigName,
        ProductionVariants=base.ProductionVariants,
        AsyncInferenceConfig=AsyncInferenceConfig(
            OutputConfig=AsyncInferenceOutputConfig(
                S3OutputPath=f"s3://<bucket>/{endpoint}/output/",
                S3FailurePath=f"s3://<bucket>/{endpoint}/failure/",
                NotificationConfig=AsyncInferenceNotificationConfig(
                    SuccessTopic=f"{topic}-success", ErrorTopic=f"{topic}-error"
                ),
            ),
            ClientConfig=AsyncInferenceClientConfig(MaxConcurrentInvocationsPerInstance=per_instance),
        ),
    )


def async_scaling(
    endpoint: str, max_capacity: int, backlog_target: float, cooldowns: tuple[int, int]
) -> tuple[RegisterScalableTarget, list[ScalingPolicy], MetricAlarm]:
    """MinCapacity 0, target tracking on the backlog per instance, and the step policy that scales out from zero.

    ``cooldowns`` are (scale-in, scale-out) seconds; the scale-out one (at least the warm-up) also bounds the
    step policy's cooldown from below.

    Without the step policy "your endpoint only initiates scaling up from zero after the number of backlog
    requests exceeds the target tracking value" (async-inference-autoscale.html).
    """
    dimensions = [TargetTrackingMetricDimension(Name="EndpointName", Value=endpoint)]
    register = RegisterScalableTarget(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=0,
        MaxCapacity=max_capacity,
    )
    tracking = ScalingPolicy(
        PolicyName=f"{endpoint}-backlog-target-tracking",
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
            TargetValue=backlog_target,
            CustomizedMetricSpecification=CustomizedMetricSpecification(
                MetricName="ApproximateBacklogSizePerInstance",
                Namespace="AWS/SageMaker",
                Dimensions=dimensions,
                Statistic="Average",
            ),
            ScaleInCooldown=cooldowns[0],
            ScaleOutCooldown=cooldowns[1],
        ),
    )
    from_zero_name = f"{endpoint}-scale-out-from-zero"
    from_zero = ScalingPolicy(
        PolicyName=from_zero_name,
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration=StepScalingPolicyConfiguration(
            AdjustmentType="ChangeInCapacity",
            StepAdjustments=[StepAdjustment(MetricIntervalLowerBound=0.0, ScalingAdjustment=1)],
            Cooldown=max(_FROM_ZERO_COOLDOWN_S, cooldowns[1]),
            MetricAggregationType="Average",
        ),
    )
    alarm = MetricAlarm(
        AlarmName=f"{endpoint}-has-backlog-without-capacity",
        AlarmDescription="Requests are queued and no instance runs: start one (the documented scale-out-from-zero "
        "policy of asynchronous inference).",
        Namespace="AWS/SageMaker",
        MetricName="HasBacklogWithoutCapacity",
        Dimensions=[MetricDimension(Name="EndpointName", Value=endpoint)],
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing",
        Statistic="Average",
        AlarmActions=[policy_arn_placeholder(from_zero_name)],
    )
    return register, [tracking, from_zero], alarm


def transform_job(
    endpoint: str,
    instance_type: str,
    count: int,
    concurrency: tuple[int, int],
    timeout_s: int,
) -> CreateTransformJob:
    """One run of the batch job; ``concurrency`` is (MaxConcurrentTransforms, MaxPayloadInMB)."""
    max_transforms, max_payload = concurrency
    return CreateTransformJob(
        TransformJobName=f"{endpoint}-run"[:63],
        ModelName=f"{endpoint}-model"[:63],
        MaxConcurrentTransforms=max_transforms,
        MaxPayloadInMB=max_payload,
        BatchStrategy="MultiRecord",
        ModelClientConfig=ModelClientConfig(InvocationsTimeoutInSeconds=timeout_s, InvocationsMaxRetries=1),
        TransformInput=TransformInput(
            DataSource=TransformDataSource(
                S3DataSource=S3DataSource(S3DataType="S3Prefix", S3Uri=f"s3://<bucket>/{endpoint}/input/")
            ),
            SplitType="Line",
        ),
        TransformOutput=TransformOutput(S3OutputPath=f"s3://<bucket>/{endpoint}/output/", AssembleWith="Line"),
        TransformResources=TransformResources(InstanceType=instance_type, InstanceCount=count),
    )


def component_endpoint_config(
    endpoint: str, instance_type: str, instances: tuple[int, int, int]
) -> CreateEndpointConfig:
    """The shared endpoint's configuration: a variant without a model (each inference component names its own),
    ``instances`` = (initial, min, max) under managed instance scaling, requests routed to the least busy copy.

    ``ExecutionRoleArn`` is the role SageMaker assumes to run the components' containers (AWS's inference component
    examples pass one); fill in the placeholder.
    """
    initial, low, high = instances
    variant = ProductionVariant(
        VariantName=VARIANT_NAME,
        InstanceType=instance_type,
        InitialInstanceCount=initial,
        RoutingConfig=RoutingConfig(RoutingStrategy="LEAST_OUTSTANDING_REQUESTS"),
        ManagedInstanceScaling=ManagedInstanceScaling(Status="ENABLED", MinInstanceCount=low, MaxInstanceCount=high),
    )
    return CreateEndpointConfig(
        EndpointConfigName=f"{endpoint}-config"[:63],
        ProductionVariants=[variant],
        ExecutionRoleArn="arn:aws:iam::<account-id>:role/<sagemaker-execution-role>",
    )


def component_name(endpoint: str) -> str:
    return f"{endpoint}-component"[:63].rstrip("-")


def inference_component(
    endpoint: str, needs: tuple[float, int], copies: int, startup_s: float
) -> CreateInferenceComponent:
    """One model's copies: ``needs`` = (CPU cores, MB of memory) per copy; copies spread over instances and balanced
    over AZs (at most one copy apart, as the AZ-loss plan assumes); timeouts covering the warm-up (60-3600 s)."""
    cores, memory_mb = needs
    timeout = min(max(math.ceil(startup_s), 60), 3600)
    return CreateInferenceComponent(
        InferenceComponentName=component_name(endpoint),
        EndpointName=endpoint,
        VariantName=VARIANT_NAME,
        Specification=InferenceComponentSpecification(
            ModelName=f"{endpoint}-model"[:63],
            StartupParameters=InferenceComponentStartupParameters(
                ModelDataDownloadTimeoutInSeconds=timeout, ContainerStartupHealthCheckTimeoutInSeconds=timeout
            ),
            ComputeResourceRequirements=InferenceComponentComputeResourceRequirements(
                NumberOfCpuCoresRequired=cores, MinMemoryRequiredInMb=memory_mb
            ),
            SchedulingConfig=InferenceComponentSchedulingConfig(
                PlacementStrategy="SPREAD",
                AvailabilityZoneBalance=InferenceComponentAvailabilityZoneBalance(
                    EnforcementMode="PERMISSIVE", MaxImbalance=1
                ),
            ),
        ),
        RuntimeConfig=InferenceComponentRuntimeConfig(CopyCount=copies),
    )


def component_scaling(
    endpoint: str, copies: tuple[int, int], per_copy_per_minute: float, cooldowns: tuple[int, int]
) -> tuple[RegisterScalableTarget, ScalingPolicy]:
    """The copy count between ``copies`` (min, max), target tracking on invocations per copy per minute."""
    resource = f"inference-component/{component_name(endpoint)}"
    register = RegisterScalableTarget(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource,
        ScalableDimension=COPY_COUNT_DIMENSION,
        MinCapacity=copies[0],
        MaxCapacity=copies[1],
    )
    policy = predefined_target_tracking(
        f"{component_name(endpoint)}-copies-target-tracking"[:256],
        resource,
        COPY_COUNT_DIMENSION,
        "SageMakerInferenceComponentInvocationsPerCopy",
        per_copy_per_minute,
        cooldowns,
    )
    return register, policy
