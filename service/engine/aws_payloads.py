"""Builders for the AWS payloads a recommendation emits: the endpoint configuration and the
Application Auto Scaling requests. The CloudWatch alarms are built in ``aws_alarms`` and re-exported here.

Units matter here: SageMaker's ``InvocationsPerInstance`` is per minute, so targets and step bounds are
rps x 60 (SageMaker developer guide, "Amazon SageMaker AI metrics in Amazon CloudWatch",
https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html).

Limits quoted below come from botocore's service models (sagemaker, application-autoscaling); the tests
validate every payload against them.
"""

from __future__ import annotations

import math
from typing import Final

from service.contract.aws import (
    SCALABLE_DIMENSION,
    SERVICE_NAMESPACE,
    CreateEndpointConfig,
    MetricAlarm,
    PredefinedMetricSpecification,
    PredefinedMetricType,
    ProductionVariant,
    RegisterScalableTarget,
    RoutingConfig,
    ScalableDimension,
    ScalableTargetAction,
    ScalingPolicy,
    ScheduledAction,
    StepAdjustment,
    StepScalingPolicyConfiguration,
    TargetTrackingScalingPolicyConfiguration,
)
from service.engine.aws_alarms import (
    VARIANT_NAME,
    monitoring_alarm,
    policy_arn_placeholder,
    scale_in_alarm,
    scale_out_alarm,
)
from service.engine.capacity import fmt
from service.rulebook.models import ScalingOutcome

__all__ = [
    "STARTUP_TIMEOUT_MARGIN",
    "VARIANT_NAME",
    "create_endpoint_config",
    "monitoring_alarm",
    "policy_arn_placeholder",
    "register_target",
    "resource_id",
    "scheduled_action",
    "step_policies",
    "target_tracking_policy",
]

# botocore sagemaker: ProductionVariantModelDataDownloadTimeoutInSeconds and
# ProductionVariantContainerStartupHealthCheckTimeoutInSeconds are 60..3600; ProductionVariantVolumeSizeInGB
# is 1..512; ModelName and EndpointConfigName are at most 63 characters, [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
TIMEOUT_MIN_S: Final = 60
TIMEOUT_MAX_S: Final = 3600
VOLUME_MIN_GIB: Final = 1
VOLUME_MAX_GIB: Final = 512
NAME_MAX: Final = 63
# Each start-up timeout is the whole warm-up times this: a timeout only ends a start that is already failing,
# so it errs long; 1.5 leaves room for a slower download or load than the estimate.
STARTUP_TIMEOUT_MARGIN: Final = 1.5
_TIMEOUT_FIELDS = "ModelDataDownloadTimeoutInSeconds and ContainerStartupHealthCheckTimeoutInSeconds"


# ---------------------------------------------------------------- endpoint configuration


def create_endpoint_config(
    endpoint: str,
    instance_type: str,
    initial_count: int,
    startup_s: float,
    *,
    volume_size_supported: bool,
    volume_size_gib: int | None,
) -> tuple[CreateEndpointConfig, list[str]]:
    """The sagemaker ``create_endpoint_config`` request for one variant, and notes on values clamped.

    Timeout rule: ``ModelDataDownloadTimeoutInSeconds`` and ``ContainerStartupHealthCheckTimeoutInSeconds``
    are each ``ceil(startup_s x 1.5)``, clamped to botocore's 60..3600. The warm-up ``startup_s`` covers
    provisioning, download and container start together, so neither step alone can need more than the
    whole; the margin absorbs a slower start than estimated. ``VolumeSizeInGB`` (1..512) is sent only when
    the instance type accepts it and a size is given. Routing is ``LEAST_OUTSTANDING_REQUESTS``.
    Fields: botocore sagemaker ``ProductionVariant``; API reference
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html.
    """
    if initial_count < 1:
        raise ValueError(f"initial_count must be at least 1, not {initial_count}")
    if not math.isfinite(startup_s) or startup_s < 0:
        raise ValueError(f"startup_s must be a finite number of seconds >= 0, not {startup_s}")
    notes: list[str] = []
    timeout = _startup_timeout(startup_s, notes)
    variant = ProductionVariant(
        VariantName=VARIANT_NAME,
        ModelName=_derived_name(endpoint, "model", "ModelName", notes),
        InstanceType=instance_type,
        InitialInstanceCount=initial_count,
        ModelDataDownloadTimeoutInSeconds=timeout,
        ContainerStartupHealthCheckTimeoutInSeconds=timeout,
        RoutingConfig=RoutingConfig(RoutingStrategy="LEAST_OUTSTANDING_REQUESTS"),
        VolumeSizeInGB=_volume_size(instance_type, volume_size_supported, volume_size_gib, notes),
    )
    name = _derived_name(endpoint, "config", "EndpointConfigName", notes)
    return CreateEndpointConfig(EndpointConfigName=name, ProductionVariants=[variant]), notes


def _startup_timeout(startup_s: float, notes: list[str]) -> int:
    wanted = math.ceil(startup_s * STARTUP_TIMEOUT_MARGIN)
    timeout = min(max(wanted, TIMEOUT_MIN_S), TIMEOUT_MAX_S)
    with_margin = f"startup {fmt(startup_s)} s x {fmt(STARTUP_TIMEOUT_MARGIN)} = {wanted} s"
    if startup_s > TIMEOUT_MAX_S:
        notes.append(
            f"startup {fmt(startup_s)} s exceeds the {TIMEOUT_MAX_S} s maximum of {_TIMEOUT_FIELDS}: both set to "
            f"{TIMEOUT_MAX_S} s, so an instance whose download or health check takes longer fails to start"
        )
    elif wanted > TIMEOUT_MAX_S:
        notes.append(
            f"{with_margin} exceeds the {TIMEOUT_MAX_S} s maximum of {_TIMEOUT_FIELDS}: both set to "
            f"{TIMEOUT_MAX_S} s, a margin of x {fmt(round(TIMEOUT_MAX_S / startup_s, 2))} over the warm-up"
        )
    elif wanted < TIMEOUT_MIN_S:
        notes.append(f"{with_margin} is below the {TIMEOUT_MIN_S} s minimum of {_TIMEOUT_FIELDS}: both set to 60 s")
    return timeout


def _volume_size(instance_type: str, supported: bool, size_gib: int | None, notes: list[str]) -> int | None:
    if size_gib is None:
        return None
    if not supported:
        notes.append(f"VolumeSizeInGB {size_gib} GiB left out: {instance_type} does not accept VolumeSizeInGB")
        return None
    if size_gib > VOLUME_MAX_GIB:
        notes.append(f"volume {size_gib} GiB exceeds the {VOLUME_MAX_GIB} GiB maximum of VolumeSizeInGB: set to 512")
    elif size_gib < VOLUME_MIN_GIB:
        notes.append(f"volume {size_gib} GiB is below the {VOLUME_MIN_GIB} GiB minimum of VolumeSizeInGB: set to 1")
    return min(max(size_gib, VOLUME_MIN_GIB), VOLUME_MAX_GIB)


def _derived_name(endpoint: str, suffix: str, field: str, notes: list[str]) -> str:
    """``<endpoint>-<suffix>``, the endpoint part cut so the whole fits SageMaker's 63 characters."""
    name = f"{endpoint}-{suffix}"
    if len(name) <= NAME_MAX:
        return name
    short = f"{endpoint[: NAME_MAX - len(suffix) - 1].rstrip('-')}-{suffix}"
    notes.append(f"{field} shortened to {short}: {name} is longer than {NAME_MAX} characters")
    return short


# ---------------------------------------------------------------- scaling


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT_NAME}"


def register_target(endpoint: str, min_capacity: int, max_capacity: int) -> RegisterScalableTarget:
    return RegisterScalableTarget(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=min_capacity,
        MaxCapacity=max_capacity,
    )


def predefined_target_tracking(
    name: str,
    resource: str,
    dimension: ScalableDimension,
    metric: PredefinedMetricType,
    target: float,
    cooldowns: tuple[int, int],
) -> ScalingPolicy:
    """A target-tracking policy on a predefined SageMaker metric; ``cooldowns`` are (scale-in, scale-out), s."""
    return ScalingPolicy(
        PolicyName=name,
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource,
        ScalableDimension=dimension,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
            TargetValue=target,
            PredefinedMetricSpecification=PredefinedMetricSpecification(PredefinedMetricType=metric),
            ScaleInCooldown=cooldowns[0],
            ScaleOutCooldown=cooldowns[1],
        ),
    )


def target_tracking_policy(endpoint: str, target_value: float, outcome: ScalingOutcome) -> ScalingPolicy:
    return predefined_target_tracking(
        f"{endpoint}-invocations-target-tracking",
        resource_id(endpoint),
        SCALABLE_DIMENSION,
        "SageMakerVariantInvocationsPerInstance",
        target_value,
        (outcome.scale_in_cooldown_s, outcome.scale_out_cooldown_s),
    )


def _step_policy(endpoint: str, name: str, config: StepScalingPolicyConfiguration) -> ScalingPolicy:
    return ScalingPolicy(
        PolicyName=name,
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration=config,
    )


def step_policies(
    endpoint: str, threshold: float, scale_in_threshold: float, outcome: ScalingOutcome
) -> tuple[list[ScalingPolicy], list[MetricAlarm], str]:
    """A scale-out and a scale-in step policy, each with the CloudWatch alarm that drives it.

    Both alarms watch InvocationsPerInstance (Sum per minute). Step bounds are offsets from the
    alarm threshold, in invocations per minute. The scale-out alarm watches the metric itself; the
    scale-in alarm uses metric math so that it also fires when traffic stops (see ``aws_alarms.scale_in_alarm``).
    """
    steps = outcome.scale_out_steps or []
    adjustments = [
        StepAdjustment(
            MetricIntervalLowerBound=round(step.above * threshold, 2),
            MetricIntervalUpperBound=round(steps[i + 1].above * threshold, 2) if i + 1 < len(steps) else None,
            ScalingAdjustment=step.add_percent,
        )
        for i, step in enumerate(steps)
    ]
    out_name, in_name = f"{endpoint}-step-scale-out", f"{endpoint}-step-scale-in"
    out_config = StepScalingPolicyConfiguration(
        AdjustmentType="PercentChangeInCapacity",
        StepAdjustments=adjustments,
        MinAdjustmentMagnitude=1,
        Cooldown=outcome.scale_out_cooldown_s,
        MetricAggregationType="Average",
    )
    in_config = StepScalingPolicyConfiguration(
        AdjustmentType="ChangeInCapacity",
        StepAdjustments=[StepAdjustment(MetricIntervalUpperBound=0.0, ScalingAdjustment=-1)],
        Cooldown=outcome.scale_in_cooldown_s,
        MetricAggregationType="Average",
    )
    policies = [_step_policy(endpoint, out_name, out_config), _step_policy(endpoint, in_name, in_config)]
    alarms = [scale_out_alarm(endpoint, out_name, threshold), scale_in_alarm(endpoint, in_name, scale_in_threshold)]
    layout = ", ".join(f"[+{fmt(step.above * 100)}%: +{step.add_percent}%]" for step in steps)
    return policies, alarms, layout


def scheduled_action(endpoint: str, name: str, schedule: str, min_capacity: int, max_capacity: int) -> ScheduledAction:
    return ScheduledAction(
        ServiceNamespace=SERVICE_NAMESPACE,
        ScheduledActionName=f"{endpoint}-{name}",
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        Schedule=schedule,
        ScalableTargetAction=ScalableTargetAction(MinCapacity=min_capacity, MaxCapacity=max_capacity),
    )
