"""CloudWatch ``put_metric_alarm`` requests: the step-scaling alarms and the monitoring alarms.

Units (SageMaker developer guide, "Amazon SageMaker AI metrics in Amazon CloudWatch",
https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html): ``InvocationsPerInstance``
counts per instance, so its Sum per 60 s is invocations per instance per minute (rps x 60);
``ModelLatency`` and ``OverheadLatency`` are microseconds (ms x 1000); ``CPUUtilization`` and
``GPUUtilization`` add up over vCPUs and GPUs (80 % of a 4-vCPU instance is 320).

Shapes: botocore cloudwatch ``PutMetricAlarmInput``; with ``Metrics`` (metric math) an alarm carries no
Namespace, MetricName, Dimensions, Period, Unit, Statistic or ExtendedStatistic of its own.
"""

from __future__ import annotations

from typing import Final, Literal

from service.contract.aws import Metric, MetricAlarm, MetricDataQuery, MetricDimension, MetricStat
from service.engine.capacity import fmt
from service.rulebook.models import AlarmSpec

__all__ = [
    "DEFAULT_THRESHOLDS",
    "VARIANT_NAME",
    "dimensions",
    "monitoring_alarm",
    "policy_arn_placeholder",
    "scale_in_alarm",
    "scale_out_alarm",
]

VARIANT_NAME: Final = "AllTraffic"
SAGEMAKER_NAMESPACE: Final = "AWS/SageMaker"
ENDPOINT_NAMESPACE: Final = "/aws/sagemaker/Endpoints"

# The AlarmSpec.threshold defaults (service/rulebook/models.py): shares of the SLA, an error rate, percent per
# core or GPU, or a share of the load-tested per-instance rate.
DEFAULT_THRESHOLDS: Final = {
    "latency_p99": 1.0,
    "latency_p99_early": 0.8,
    "caller_latency_p99": 1.0,
    "errors_5xx": 0.01,
    "cpu_utilization": 80.0,
    "gpu_utilization": 80.0,
    "memory_utilization": 80.0,
    "invocations_above_capacity": 0.9,
}


def policy_arn_placeholder(policy_name: str) -> str:
    """Stands in an alarm's AlarmActions for the ARN that put_scaling_policy returns."""
    return f"{{policy_arn:{policy_name}}}"


def dimensions(endpoint: str) -> list[MetricDimension]:
    return [
        MetricDimension(Name="EndpointName", Value=endpoint),
        MetricDimension(Name="VariantName", Value=VARIANT_NAME),
    ]


def _stat(endpoint: str, name: str, stat: str, unit: str | None = None) -> MetricStat:
    metric = Metric(Namespace=SAGEMAKER_NAMESPACE, MetricName=name, Dimensions=dimensions(endpoint))
    return MetricStat(Metric=metric, Period=60, Stat=stat, Unit=unit)


# ---------------------------------------------------------------- step scaling


def scale_out_alarm(endpoint: str, policy_name: str, threshold: float) -> MetricAlarm:
    """At or above ``threshold`` invocations per instance per minute for 2 minutes: one metric, no math."""
    return MetricAlarm(
        AlarmName=f"{policy_name}-alarm",
        AlarmDescription=f"Drives {policy_name}: scale out when invocations per instance reach the planned "
        "utilisation.",
        Namespace=SAGEMAKER_NAMESPACE,
        MetricName="InvocationsPerInstance",
        Dimensions=dimensions(endpoint),
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=threshold,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[policy_arn_placeholder(policy_name)],
    )


def scale_in_alarm(endpoint: str, policy_name: str, threshold: float) -> MetricAlarm:
    """Below ``threshold`` invocations per instance per minute for 15 minutes, including no traffic at all.

    Whether SageMaker publishes InvocationsPerInstance = 0 in minutes without requests, or publishes nothing,
    is disputed, so the alarm works either way. It watches the metric-math expression ``FILL(m1, 0)``
    (m1 = InvocationsPerInstance, Sum per 60 s), which turns every minute without a data point into 0 as long
    as the evaluated range holds at least one point (CloudWatch user guide, "Using metric math",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html). FILL cannot fill
    a series with no point in the range at all: the expression then returns nothing, and
    ``TreatMissingData="breaching"`` counts those minutes as below the threshold (CloudWatch user guide,
    "Configuring how CloudWatch alarms treat missing data",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data).
    Zeros that SageMaker publishes are below the threshold anyway. The scale-in step has no lower bound, so
    any breach removes one instance. Not checked offline: which step Application Auto Scaling applies when
    the alarm is in ALARM only because data is missing.
    """
    return MetricAlarm(
        AlarmName=f"{policy_name}-alarm",
        AlarmDescription=f"Drives {policy_name}: scale in, one instance at a time, after 15 minutes below "
        f"{fmt(threshold)} invocations per instance per minute. Minutes without data count as 0 (FILL) and a "
        "window without any data as breaching, so the alarm also fires when traffic stops.",
        Metrics=[
            MetricDataQuery(Id="m1", MetricStat=_stat(endpoint, "InvocationsPerInstance", "Sum"), ReturnData=False),
            MetricDataQuery(
                Id="e1",
                Expression="FILL(m1, 0)",
                Label="InvocationsPerInstance per minute, 0 where missing",
                ReturnData=True,
            ),
        ],
        EvaluationPeriods=15,
        DatapointsToAlarm=15,
        Threshold=threshold,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
        AlarmActions=[policy_arn_placeholder(policy_name)],
    )


# ---------------------------------------------------------------- monitoring


def monitoring_alarm(
    endpoint: str,
    spec: AlarmSpec,
    *,
    p99_latency_ms: float,
    vcpus: int,
    gpus: int,
    because: str,
    per_instance_rps: float | None = None,
) -> MetricAlarm | None:
    """The CloudWatch alarm for one monitoring rule, or None where the metric does not exist.

    ``invocations_above_capacity`` needs ``per_instance_rps`` (the load-tested rate of one instance) and
    is None without it; ``gpu_utilization`` is None without GPUs.
    """
    threshold = spec.threshold if spec.threshold is not None else DEFAULT_THRESHOLDS[spec.kind]
    if spec.kind in ("latency_p99", "latency_p99_early"):
        return _model_latency(endpoint, p99_latency_ms, threshold, because, early=spec.kind == "latency_p99_early")
    if spec.kind == "caller_latency_p99":
        return _caller_latency(endpoint, p99_latency_ms, threshold, because)
    if spec.kind == "invocations_above_capacity":
        return None if per_instance_rps is None else _above_capacity(endpoint, per_instance_rps, threshold, because)
    if spec.kind == "errors_5xx":
        return _single(
            endpoint,
            f"{endpoint}-invocation-5xx-rate",
            f"Share of invocations failing with 5XX above {fmt(threshold * 100)}%. {because}",
            "Invocation5XXErrors",
            threshold,
            statistic="Average",
        )
    return _utilization(endpoint, spec.kind, threshold, vcpus, gpus, because)


def _single(
    endpoint: str,
    name: str,
    description: str,
    metric: str,
    threshold: float,
    *,
    namespace: str = SAGEMAKER_NAMESPACE,
    statistic: Literal["Sum", "Average"] | None = None,
    extended: str | None = None,
    unit: str | None = None,
    periods: tuple[int, int] = (5, 3),
) -> MetricAlarm:
    """A one-metric alarm on the variant, per minute, above ``threshold``; ``periods`` = (evaluated, to alarm)."""
    return MetricAlarm(
        AlarmName=name,
        AlarmDescription=description,
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dimensions(endpoint),
        Period=60,
        Statistic=statistic,
        ExtendedStatistic=extended,
        Unit=unit,
        EvaluationPeriods=periods[0],
        DatapointsToAlarm=periods[1],
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )


def _model_latency(endpoint: str, sla_ms: float, share: float, because: str, *, early: bool) -> MetricAlarm:
    """p99 ModelLatency above ``share`` of the SLA, in microseconds; ``early`` names the warning below the SLA."""
    micros = round(sla_ms * 1000 * share, 3)
    ms = f"{fmt(sla_ms * share)} ms"
    what = f"{ms}, {fmt(share * 100)}% of the {fmt(sla_ms)} ms SLA: an early warning" if early else ms
    return _single(
        endpoint,
        f"{endpoint}-model-latency-p99{'-early' if early else ''}",
        f"p99 ModelLatency above {fmt(micros)} us ({what}). {because}",
        "ModelLatency",
        micros,
        extended="p99",
        unit="Microseconds",
    )


def _caller_latency(endpoint: str, sla_ms: float, share: float, because: str) -> MetricAlarm:
    """p99.5 ModelLatency + p99.5 OverheadLatency, microseconds: an upper bound of the callers' p99.

    Each request has a model latency X and an overhead Y. P(X + Y > x + y) <= P(X > x) + P(Y > y), so the
    sum of the two p99.5s is exceeded by at most 0.5 % + 0.5 % = 1 % of requests: it bounds the p99 of
    X + Y from above. The sum of the two p99s does not (it bounds only the p98): two metrics each slow for
    a different 0.9 % of requests have p99s of "fast" while more than 1 % of requests are slow.
    Not included: the network between the caller and SageMaker.
    """
    micros = round(sla_ms * 1000 * share, 3)
    return MetricAlarm(
        AlarmName=f"{endpoint}-caller-latency-p99",
        AlarmDescription=f"Latency callers see above {fmt(micros)} us ({fmt(sla_ms * share)} ms): p99.5 "
        "ModelLatency + p99.5 OverheadLatency, which bounds the p99 of model + overhead from above (by the union "
        f"bound; the sum of the two p99s would not). The network to the endpoint is not included. {because}",
        Metrics=[
            MetricDataQuery(Id="m1", MetricStat=_stat(endpoint, "ModelLatency", "p99.5", "Microseconds")),
            MetricDataQuery(Id="m2", MetricStat=_stat(endpoint, "OverheadLatency", "p99.5", "Microseconds")),
            MetricDataQuery(
                Id="e1", Expression="m1 + m2", Label="ModelLatency + OverheadLatency, p99.5 each (us)", ReturnData=True
            ),
        ],
        EvaluationPeriods=5,
        DatapointsToAlarm=3,
        Threshold=micros,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )


def _above_capacity(endpoint: str, per_instance_rps: float, share: float, because: str) -> MetricAlarm:
    """InvocationsPerInstance (Sum per minute) above ``share`` of the load-tested rate x 60.

    For hardware whose utilisation metrics do not show saturation (e.g. Neuron), the request rate against
    the rate one instance sustained in the load test is the signal left.
    """
    per_minute = round(share * per_instance_rps * 60, 3)
    return _single(
        endpoint,
        f"{endpoint}-invocations-above-capacity",
        f"InvocationsPerInstance above {fmt(per_minute)} per minute ({fmt(share * 100)}% of the load-tested "
        f"{fmt(per_instance_rps)} rps per instance x 60). {because}",
        "InvocationsPerInstance",
        per_minute,
        statistic="Sum",
    )


def _utilization(endpoint: str, kind: str, percent: float, vcpus: int, gpus: int, because: str) -> MetricAlarm | None:
    units = {"cpu_utilization": vcpus, "gpu_utilization": gpus, "memory_utilization": 1}[kind]
    if units == 0:
        return None
    metric = {"cpu_utilization": "CPUUtilization", "gpu_utilization": "GPUUtilization"}.get(kind, "MemoryUtilization")
    scaled = round(percent * units, 3)
    per = f" ({fmt(percent)}% x {units} {'vCPUs' if metric == 'CPUUtilization' else 'GPUs'})" if units > 1 else ""
    return _single(
        endpoint,
        f"{endpoint}-{metric.lower().replace('utilization', '-utilization')}",
        f"{metric} above {fmt(scaled)}%{per}. {because}",
        metric,
        scaled,
        namespace=ENDPOINT_NAMESPACE,
        statistic="Average",
        periods=(10, 8),
    )
