"""Builders for the AWS payloads a recommendation emits.

Units matter here: SageMaker's ``InvocationsPerInstance`` is per minute (so targets are
rps x 60), CloudWatch's ``ModelLatency`` is in microseconds (so thresholds are ms x 1000), and
``CPUUtilization`` / ``GPUUtilization`` add up over cores / GPUs (so 80 % of a 4-vCPU instance
is a threshold of 320).
"""

from __future__ import annotations

from service.contract.aws import (
    SCALABLE_DIMENSION,
    SERVICE_NAMESPACE,
    MetricAlarm,
    MetricDimension,
    PredefinedMetricSpecification,
    RegisterScalableTarget,
    ScalableTargetAction,
    ScalingPolicy,
    ScheduledAction,
    StepAdjustment,
    StepScalingPolicyConfiguration,
    TargetTrackingScalingPolicyConfiguration,
)
from service.engine.capacity import fmt
from service.rulebook.models import AlarmSpec, ScalingOutcome

__all__ = [
    "VARIANT_NAME",
    "monitoring_alarm",
    "policy_arn_placeholder",
    "register_target",
    "resource_id",
    "scheduled_action",
    "step_policies",
    "target_tracking_policy",
]

VARIANT_NAME = "AllTraffic"


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT_NAME}"


def policy_arn_placeholder(policy_name: str) -> str:
    """Stands in an alarm's AlarmActions for the ARN that put_scaling_policy returns."""
    return f"{{policy_arn:{policy_name}}}"


def _dimensions(endpoint: str) -> list[MetricDimension]:
    return [
        MetricDimension(Name="EndpointName", Value=endpoint),
        MetricDimension(Name="VariantName", Value=VARIANT_NAME),
    ]


def register_target(endpoint: str, min_capacity: int, max_capacity: int) -> RegisterScalableTarget:
    return RegisterScalableTarget(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=min_capacity,
        MaxCapacity=max_capacity,
    )


def target_tracking_policy(endpoint: str, target_value: float, outcome: ScalingOutcome) -> ScalingPolicy:
    return ScalingPolicy(
        PolicyName=f"{endpoint}-invocations-target-tracking",
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
            TargetValue=target_value,
            PredefinedMetricSpecification=PredefinedMetricSpecification(
                PredefinedMetricType="SageMakerVariantInvocationsPerInstance"
            ),
            ScaleInCooldown=outcome.scale_in_cooldown_s,
            ScaleOutCooldown=outcome.scale_out_cooldown_s,
        ),
    )


def step_policies(
    endpoint: str, threshold: float, scale_in_threshold: float, outcome: ScalingOutcome
) -> tuple[list[ScalingPolicy], list[MetricAlarm], str]:
    """A scale-out and a scale-in step policy, each with the CloudWatch alarm that drives it.

    Both alarms watch InvocationsPerInstance (Sum per minute). Step bounds are offsets from the
    alarm threshold, in invocations per minute.
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
    policies = [
        ScalingPolicy(
            PolicyName=out_name,
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceId=resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration=StepScalingPolicyConfiguration(
                AdjustmentType="PercentChangeInCapacity",
                StepAdjustments=adjustments,
                MinAdjustmentMagnitude=1,
                Cooldown=outcome.scale_out_cooldown_s,
                MetricAggregationType="Average",
            ),
        ),
        ScalingPolicy(
            PolicyName=in_name,
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceId=resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration=StepScalingPolicyConfiguration(
                AdjustmentType="ChangeInCapacity",
                StepAdjustments=[StepAdjustment(MetricIntervalUpperBound=0.0, ScalingAdjustment=-1)],
                Cooldown=outcome.scale_in_cooldown_s,
                MetricAggregationType="Average",
            ),
        ),
    ]
    alarms = [
        _invocations_alarm(
            endpoint,
            out_name,
            threshold,
            "GreaterThanOrEqualToThreshold",
            periods=2,
            why="scale out when invocations per instance reach the planned utilisation",
        ),
        _invocations_alarm(
            endpoint,
            in_name,
            scale_in_threshold,
            "LessThanThreshold",
            periods=15,
            why="scale in, one instance at a time, after 15 quiet minutes",
        ),
    ]
    layout = ", ".join(f"[+{fmt(step.above * 100)}%: +{step.add_percent}%]" for step in steps)
    return policies, alarms, layout


def _invocations_alarm(
    endpoint: str, policy_name: str, threshold: float, comparison: str, *, periods: int, why: str
) -> MetricAlarm:
    return MetricAlarm(
        AlarmName=f"{policy_name}-alarm",
        AlarmDescription=f"Drives {policy_name}: {why}.",
        Namespace="AWS/SageMaker",
        MetricName="InvocationsPerInstance",
        Dimensions=_dimensions(endpoint),
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=periods,
        DatapointsToAlarm=periods,
        Threshold=threshold,
        ComparisonOperator=comparison,  # type: ignore[arg-type]
        TreatMissingData="notBreaching" if comparison.startswith("Greater") else "missing",
        AlarmActions=[policy_arn_placeholder(policy_name)],
    )


def scheduled_action(endpoint: str, name: str, schedule: str, min_capacity: int, max_capacity: int) -> ScheduledAction:
    return ScheduledAction(
        ServiceNamespace=SERVICE_NAMESPACE,
        ScheduledActionName=f"{endpoint}-{name}",
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        Schedule=schedule,
        ScalableTargetAction=ScalableTargetAction(MinCapacity=min_capacity, MaxCapacity=max_capacity),
    )


_DEFAULT_THRESHOLDS = {
    "latency_p99": 1.0,
    "errors_5xx": 0.01,
    "cpu_utilization": 80.0,
    "gpu_utilization": 80.0,
    "memory_utilization": 80.0,
}


def monitoring_alarm(
    endpoint: str, spec: AlarmSpec, *, p99_latency_ms: float, vcpus: int, gpus: int, because: str
) -> MetricAlarm | None:
    """The CloudWatch alarm for one monitoring rule, or None where the metric does not exist."""
    threshold = spec.threshold if spec.threshold is not None else _DEFAULT_THRESHOLDS[spec.kind]
    common = {"Dimensions": _dimensions(endpoint), "Period": 60, "TreatMissingData": "notBreaching"}
    if spec.kind == "latency_p99":
        micros = round(p99_latency_ms * 1000 * threshold, 3)
        return MetricAlarm(
            AlarmName=f"{endpoint}-model-latency-p99",
            AlarmDescription=f"p99 ModelLatency above {fmt(micros)} us ({fmt(p99_latency_ms * threshold)} ms). "
            f"{because}",
            Namespace="AWS/SageMaker",
            MetricName="ModelLatency",
            ExtendedStatistic="p99",
            Unit="Microseconds",
            EvaluationPeriods=5,
            DatapointsToAlarm=3,
            Threshold=micros,
            ComparisonOperator="GreaterThanThreshold",
            **common,  # type: ignore[arg-type]
        )
    if spec.kind == "errors_5xx":
        return MetricAlarm(
            AlarmName=f"{endpoint}-invocation-5xx-rate",
            AlarmDescription=f"Share of invocations failing with 5XX above {fmt(threshold * 100)}%. {because}",
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Statistic="Average",
            EvaluationPeriods=5,
            DatapointsToAlarm=3,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            **common,  # type: ignore[arg-type]
        )
    units = {"cpu_utilization": vcpus, "gpu_utilization": gpus, "memory_utilization": 1}[spec.kind]
    if units == 0:
        return None
    metric = {"cpu_utilization": "CPUUtilization", "gpu_utilization": "GPUUtilization"}.get(
        spec.kind, "MemoryUtilization"
    )
    scaled = round(threshold * units, 3)
    per = f" ({fmt(threshold)}% x {units} {'vCPUs' if metric == 'CPUUtilization' else 'GPUs'})" if units > 1 else ""
    return MetricAlarm(
        AlarmName=f"{endpoint}-{metric.lower().replace('utilization', '-utilization')}",
        AlarmDescription=f"{metric} above {fmt(scaled)}%{per}. {because}",
        Namespace="/aws/sagemaker/Endpoints",
        MetricName=metric,
        Statistic="Average",
        EvaluationPeriods=10,
        DatapointsToAlarm=8,
        Threshold=scaled,
        ComparisonOperator="GreaterThanThreshold",
        **common,  # type: ignore[arg-type]
    )
