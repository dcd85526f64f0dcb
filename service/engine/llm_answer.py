"""The parts of an LLM's answer in its own units: the ``llm`` block, container settings, scaling on
concurrency, and alarms on concurrency instead of GPU utilisation.

A stream holds its request open until the last token, so requests per minute say little about load:
target tracking follows ``SageMakerVariantConcurrentRequestsPerModelHighResolution`` (concurrent requests
in the container, queued ones included, published every 10 seconds), aimed at the same AZ-safe share of
the instance's streams as the request-rate plan. During decode a GPU reports itself busy at any batch
size, so GPU utilisation is no saturation signal: the concurrency alarm takes its place.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

import msgspec

from service.contract import Monitoring, ScalingPlan, Warning
from service.contract.aws import MetricAlarm
from service.contract.llm import LlmAnswer
from service.contract.recommendation import MonitoringRationale
from service.engine import aws_payloads as aws
from service.engine.aws_alarms import dimensions
from service.engine.capacity import fmt
from service.engine.core import Decision
from service.engine.llm_profile import LlmInputs
from service.engine.llm_sizing import LlmPlan
from service.engine.mode_parts import Parts

__all__ = ["CONCURRENCY_METRIC", "apply_llm"]

CONCURRENCY_METRIC: Final = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
_HIGH_RESOLUTION_S = 10  # the concurrency metrics are published every 10 seconds
_DTYPE = {"bf16": "bf16", "fp16": "fp16"}
_VLLM_DTYPE = {"bf16": "bfloat16", "fp16": "float16"}


def apply_llm(
    decision: Decision, parts: Parts, endpoint: str, warnings: list[Warning]
) -> tuple[Parts, LlmAnswer | None]:
    """The parts reshaped for an LLM described by workload.llm, and its ``llm`` block (None otherwise)."""
    inputs, plan = decision.llm_inputs, decision.llm_plan
    if inputs is None or plan is None:
        return parts, None
    warnings.extend(Warning(code="model_memory_mismatch", message=note) for note in inputs.notes)
    if plan.basis == "roofline":
        warnings.append(
            Warning(
                code="llm_throughput_estimated",
                message=f"{plan.streams} streams per {plan.instance.type} rest on a roofline (memory bandwidth for "
                "decode, dense compute for prefill), an upper bound real kernels do not reach: load-test the type at "
                "the planned concurrency (load_tests[].max_concurrency, output_tokens_per_s) before relying on it.",
            )
        )
    startup_s = parts.hosting.startup_s or 0.0
    scaling = parts.scaling
    if scaling is not None and decision.hosting_mode == "real_time":  # other modes scale copies or backlogs
        scaling = _scaling(decision, scaling, inputs, endpoint, startup_s)
    monitoring = _monitoring(decision, parts.monitoring, plan, endpoint)
    timeout = _startup_timeout(parts)
    answer = LlmAnswer(
        model=inputs.arch.model_id,
        precision=inputs.llm.precision,
        parameters_b=round(inputs.arch.parameters / 1e9, 3),
        weights_gib=round(inputs.weights_gib, 2),
        kv_cache_gib_per_stream=round(inputs.kv_gib_per_stream, 6),
        tokens_per_stream=inputs.tokens_per_stream,
        tensor_parallel_degree=plan.tp_degree,
        copies_per_instance=plan.copies,
        max_streams_per_instance=plan.max_streams,
        streams_per_instance=plan.streams,
        sla_streams_per_instance=plan.sla_streams,
        streams_basis=plan.basis,  # type: ignore[arg-type]
        stream_duration_s=round(inputs.duration_s, 4),
        container=inputs.llm.container,
        container_env=container_env(inputs, plan, timeout),
        steps=[*inputs.steps, *plan.steps],
    )
    return replace(parts, scaling=scaling, monitoring=monitoring), answer


def container_env(inputs: LlmInputs, plan: LlmPlan, startup_timeout_s: int | None) -> dict[str, str]:
    """Settings named as the container documents them (LMI configurations guide; TGI's SageMaker entrypoint and
    launcher; vLLM's engine arguments), sized to one copy: its degree, streams and context."""
    llm = inputs.llm
    batch = max(1, math.ceil(plan.streams / plan.copies))
    quantize = llm.precision == "fp8"  # int8/int4 checkpoints are pre-quantised: the container reads their config
    if llm.container == "lmi":
        env = {
            "OPTION_TENSOR_PARALLEL_DEGREE": str(plan.tp_degree),
            "OPTION_MAX_ROLLING_BATCH_SIZE": str(batch),
            "OPTION_MAX_MODEL_LEN": str(llm.context_tokens),
            "OPTION_DTYPE": _DTYPE.get(llm.precision, "fp16"),
        }
        if quantize:
            env["OPTION_QUANTIZE"] = "fp8"
        if startup_timeout_s is not None:  # LMI's model-loading timeout must end before SageMaker's health check
            env["OPTION_MODEL_LOADING_TIMEOUT"] = str(startup_timeout_s)
        return env
    if llm.container == "tgi":
        env = {
            "SM_NUM_GPUS": str(plan.tp_degree),
            "MAX_INPUT_TOKENS": str(max(1, min(llm.input_tokens, llm.context_tokens - 1))),
            "MAX_TOTAL_TOKENS": str(llm.context_tokens),
            "MAX_BATCH_TOTAL_TOKENS": str(batch * inputs.tokens_per_stream),
        }
        if quantize:
            env["HF_MODEL_QUANTIZE"] = "fp8"
        return env
    args = {
        "--tensor-parallel-size": str(plan.tp_degree),
        "--max-num-seqs": str(batch),
        "--max-model-len": str(llm.context_tokens),
        "--dtype": _VLLM_DTYPE.get(llm.precision, "auto"),
    }
    if quantize:
        args["--quantization"] = "fp8"
    return args


def _startup_timeout(parts: Parts) -> int | None:
    config = parts.hosting.aws.create_endpoint_config
    variants = config.ProductionVariants if config is not None else []
    return variants[0].ContainerStartupHealthCheckTimeoutInSeconds if variants else None


def _scaling(
    decision: Decision, scaling: ScalingPlan, inputs: LlmInputs, endpoint: str, startup_s: float
) -> ScalingPlan:
    """Target tracking on concurrency at the plan's AZ-safe target, in streams; scheduled actions stay."""
    target_rps = decision.target.per_instance_rps
    streams = round(math.floor(target_rps * inputs.duration_s * 100) / 100, 2)
    outcome = decision.scaling_rule.then
    cooldowns = (outcome.scale_in_cooldown_s, max(outcome.scale_out_cooldown_s, math.ceil(startup_s)))
    policy = aws.predefined_target_tracking(
        f"{endpoint}-concurrency-target",
        aws.resource_id(endpoint),
        "sagemaker:variant:DesiredInstanceCount",
        CONCURRENCY_METRIC,
        streams,
        cooldowns,
    )
    plan = decision.llm_plan
    assert plan is not None
    formula = (
        f"TargetValue = target {fmt(round(target_rps, 4))} rps per instance x {fmt(round(inputs.duration_s, 3))} s per "
        f"stream = {fmt(streams)} concurrent streams per instance ({fmt(round(streams / plan.streams, 3))} of the "
        f"{plan.streams} it serves within the SLA: the AZ-safe share of the capacity plan) on {CONCURRENCY_METRIC}; "
        f"scale-out cooldown {cooldowns[1]} s"
        + (
            "; the scaling table's step policy is replaced: a stream counts until its last token, and the 10-second "
            "concurrency metric sees a burst sooner than per-minute invocation alarms"
            if scaling.method == "step"
            else ""
        )
    )
    aws_scaling = msgspec.structs.replace(scaling.aws, scaling_policies=[policy], alarms=[])
    method = "target_tracking" if scaling.method == "step" else scaling.method
    return msgspec.structs.replace(scaling, method=method, target_value=streams, formula=formula, aws=aws_scaling)


def _monitoring(decision: Decision, monitoring: Monitoring, plan: LlmPlan, endpoint: str) -> Monitoring:
    """GPU utilisation alarms out, a high-resolution concurrency alarm at the streams the SLA allows in."""
    dropped = {a.AlarmName for a in monitoring.alarms if a.MetricName == "GPUUtilization"}
    name = f"{endpoint}-concurrency-above-capacity"
    alarm = MetricAlarm(
        AlarmName=name,
        AlarmDescription=f"ConcurrentRequestsPerModel above the {plan.streams} streams an instance serves within "
        "the TTFT/ITL objectives: requests queue in the container and time to first token grows.",
        Namespace="AWS/SageMaker",
        MetricName="ConcurrentRequestsPerModel",
        Dimensions=dimensions(endpoint),
        Period=_HIGH_RESOLUTION_S,
        Statistic="Average",
        EvaluationPeriods=6,
        DatapointsToAlarm=6,
        Threshold=float(plan.streams),
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    why = MonitoringRationale(
        alarm_name=name,
        rule_id=decision.sizing_rule.id,
        reason="An LLM saturates in streams, not in GPU utilisation (busy at any decode batch): alarm when "
        "concurrency per instance passes the streams sized for the SLA, for a minute of 10-second datapoints.",
    )
    return msgspec.structs.replace(
        monitoring,
        alarms=[a for a in monitoring.alarms if a.AlarmName not in dropped] + [alarm],
        rationale=[r for r in monitoring.rationale if r.alarm_name not in dropped] + [why],
    )
