"""Every AWS request a recommendation emits, whatever its hosting mode, as (service, operation, payload)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from botocore.session import get_session
from botocore.validate import ParamValidator

from service.contract import Recommendation

_session = get_session()
MODELS = {name: _session.get_service_model(name) for name in ("application-autoscaling", "cloudwatch", "sagemaker")}
TRANSFORM_TYPES = frozenset(MODELS["sagemaker"].shape_for("TransformInstanceType").enum)
_validator = ParamValidator()


def emitted_requests(rec: Recommendation) -> Iterator[tuple[str, str, Any]]:
    hosting = rec.hosting.aws
    if hosting.create_endpoint_config is not None:
        yield "sagemaker", "CreateEndpointConfig", hosting.create_endpoint_config
    if hosting.create_inference_component is not None:
        yield "sagemaker", "CreateInferenceComponent", hosting.create_inference_component
    if hosting.create_transform_job is not None:
        yield "sagemaker", "CreateTransformJob", hosting.create_transform_job
    if rec.scaling is not None:
        aws = rec.scaling.aws
        yield "application-autoscaling", "RegisterScalableTarget", aws.register_scalable_target
        for policy in aws.scaling_policies:
            yield "application-autoscaling", "PutScalingPolicy", policy
        for action in aws.scheduled_actions:
            yield "application-autoscaling", "PutScheduledAction", action
        for alarm in aws.alarms:
            yield "cloudwatch", "PutMetricAlarm", alarm
    for alarm in rec.monitoring.alarms:
        yield "cloudwatch", "PutMetricAlarm", alarm
    yield from _deployment_requests(rec)


def _deployment_requests(rec: Recommendation) -> Iterator[tuple[str, str, Any]]:
    """The rollout as the UpdateEndpoint or UpdateInferenceComponent request that carries it."""
    deployment = rec.deployment
    if deployment is None:
        return
    config = deployment.aws.deployment_config
    if config is not None:
        endpoint = rec.hosting.aws.create_endpoint_config
        assert endpoint is not None
        name = endpoint.EndpointConfigName
        yield (
            "sagemaker",
            "UpdateEndpoint",
            {"EndpointName": "e", "EndpointConfigName": name, "DeploymentConfig": config},
        )
    component = deployment.aws.inference_component_deployment_config
    if component is not None:
        assert rec.hosting.aws.create_inference_component is not None
        name = rec.hosting.aws.create_inference_component.InferenceComponentName
        yield "sagemaker", "UpdateInferenceComponent", {"InferenceComponentName": name, "DeploymentConfig": component}


def botocore_errors(service: str, operation: str, payload: Any) -> str | None:
    """botocore's ParamValidator report for one request, or None when it passes."""
    shape = MODELS[service].operation_model(operation).input_shape
    report = _validator.validate(msgspec.to_builtins(payload), shape)
    return report.generate_report() if report.has_errors() else None
