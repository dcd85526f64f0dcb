"""The resources of a CloudFormation template, each from the answer's payload for the same API call.

CloudFormation's property names are the API's, so the payloads go in as they are; only what the advisor could not
know becomes a parameter, and the names of create-only resources are left for CloudFormation to generate.
"""

from __future__ import annotations

import re
from typing import Any

from service.export.cfn_yaml import GetAtt, If, Ref, Sub

__all__ = ["alarm_resources", "endpoint_resources", "scaling_resources"]

_NO_VALUE = Ref("AWS::NoValue")
_POLICY_PLACEHOLDER = re.compile(r"^\{policy_arn:(?P<name>[^}]+)\}$")

_COMMON_PARAMETERS: dict[str, Any] = {
    "ImageUri": {
        "Type": "String",
        "MinLength": 1,
        "Description": "The inference container image, in this Region's ECR (e.g. a SageMaker DLC or your own).",
    },
    "ModelDataUrl": {
        "Type": "String",
        "Default": "",
        "Description": "S3 URI of model.tar.gz in this Region (empty: the image holds the model).",
    },
    "ExecutionRoleArn": {
        "Type": "String",
        "AllowedPattern": "^arn:aws[a-z-]*:iam::\\d{12}:role/.+$",
        "Description": "The SageMaker execution role (reads the image and model data, writes logs).",
    },
    "Subnets": {
        "Type": "CommaDelimitedList",
        "Default": "",
        "Description": "Private subnets in at least two Availability Zones (empty: no VPC).",
    },
    "SecurityGroupIds": {
        "Type": "CommaDelimitedList",
        "Default": "",
        "Description": "Security groups of the model's network interfaces (with Subnets).",
    },
}
_KMS_PARAMETER: dict[str, Any] = {
    "Type": "String",
    "Default": "",
    "Description": "KMS key for the instances' storage volume and outputs (empty: AWS managed key).",
}
_COMMON_CONDITIONS: dict[str, Any] = {
    "HasModelData": {"Fn::Not": [{"Fn::Equals": [Ref("ModelDataUrl"), ""]}]},
    "HasVpc": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", Ref("Subnets")]}, ""]}]},
}
_KMS_CONDITION: dict[str, Any] = {"Fn::Not": [{"Fn::Equals": [Ref("KmsKeyId"), ""]}]}
_ASYNC_PARAMETERS: dict[str, Any] = {
    "S3OutputPath": {
        "Type": "String",
        "AllowedPattern": "^s3://.+/$",
        "Description": "Where responses and failures are written, ending in / (output/ and failure/ beneath).",
    },
    "SuccessTopicArn": {"Type": "String", "Default": "", "Description": "SNS topic for successes (optional)."},
    "ErrorTopicArn": {"Type": "String", "Default": "", "Description": "SNS topic for errors (optional)."},
}


def endpoint_resources(answer: dict[str, Any], mode: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(resources, parameters, conditions) of the model, endpoint configuration, endpoint and inference component."""
    aws = answer["hosting"]["aws"]
    config = aws["create_endpoint_config"]
    endpoint_name = config["EndpointConfigName"].removesuffix("-config")
    parameters, conditions = dict(_COMMON_PARAMETERS), dict(_COMMON_CONDITIONS)
    resources: dict[str, Any] = {"Model": _model()}
    variants = [_variant(v) for v in config["ProductionVariants"]]
    properties: dict[str, Any] = {"ProductionVariants": variants}
    if any("VolumeSizeInGB" in v for v in variants):  # an EBS volume to encrypt (local NVMe types refuse a key)
        properties["KmsKeyId"] = If("HasKmsKey", Ref("KmsKeyId"), _NO_VALUE)
    if config.get("AsyncInferenceConfig"):
        parameters.update(_ASYNC_PARAMETERS)
        conditions["HasTopics"] = {
            "Fn::And": [
                {"Fn::Not": [{"Fn::Equals": [Ref("SuccessTopicArn"), ""]}]},
                {"Fn::Not": [{"Fn::Equals": [Ref("ErrorTopicArn"), ""]}]},
            ]
        }
        properties["AsyncInferenceConfig"] = _async_config(config["AsyncInferenceConfig"])
    if "KmsKeyId" in properties or "AsyncInferenceConfig" in properties:
        parameters["KmsKeyId"], conditions["HasKmsKey"] = _KMS_PARAMETER, _KMS_CONDITION
    if config.get("ExecutionRoleArn"):
        properties["ExecutionRoleArn"] = Ref("ExecutionRoleArn")
    resources["EndpointConfig"] = {"Type": "AWS::SageMaker::EndpointConfig", "Properties": properties}
    endpoint: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "EndpointConfigName": GetAtt("EndpointConfig", "EndpointConfigName"),
    }
    deployment = (answer.get("deployment") or {}).get("aws") or {}
    if deployment.get("deployment_config"):
        endpoint["DeploymentConfig"] = deployment["deployment_config"]
    resources["Endpoint"] = {"Type": "AWS::SageMaker::Endpoint", "Properties": endpoint}
    component = aws.get("create_inference_component")
    if component:
        resources["InferenceComponent"] = _component(component, deployment.get("inference_component_deployment_config"))
    return resources, parameters, conditions


def _model() -> dict[str, Any]:
    return {
        "Type": "AWS::SageMaker::Model",
        "Properties": {
            "ExecutionRoleArn": Ref("ExecutionRoleArn"),
            "PrimaryContainer": {
                "Image": Ref("ImageUri"),
                "ModelDataUrl": If("HasModelData", Ref("ModelDataUrl"), _NO_VALUE),
            },
            "VpcConfig": If(
                "HasVpc", {"Subnets": Ref("Subnets"), "SecurityGroupIds": Ref("SecurityGroupIds")}, _NO_VALUE
            ),
        },
    }


def _variant(variant: dict[str, Any]) -> dict[str, Any]:
    out = dict(variant)
    if "ModelName" in out:
        out["ModelName"] = GetAtt("Model", "ModelName")
    return out


def _async_config(config: dict[str, Any]) -> dict[str, Any]:
    output: dict[str, Any] = {
        "S3OutputPath": Sub("${S3OutputPath}output/"),
        "S3FailurePath": Sub("${S3OutputPath}failure/"),
        "KmsKeyId": If("HasKmsKey", Ref("KmsKeyId"), _NO_VALUE),
    }
    if config["OutputConfig"].get("NotificationConfig"):
        output["NotificationConfig"] = If(
            "HasTopics", {"SuccessTopic": Ref("SuccessTopicArn"), "ErrorTopic": Ref("ErrorTopicArn")}, _NO_VALUE
        )
    return {"OutputConfig": output, "ClientConfig": config["ClientConfig"]}


def _component(component: dict[str, Any], deployment: dict[str, Any] | None) -> dict[str, Any]:
    specification = dict(component["Specification"], ModelName=GetAtt("Model", "ModelName"))
    properties: dict[str, Any] = {
        "InferenceComponentName": component["InferenceComponentName"],
        "EndpointName": GetAtt("Endpoint", "EndpointName"),
        "VariantName": component["VariantName"],
        "Specification": specification,
        "RuntimeConfig": component["RuntimeConfig"],
    }
    if deployment:
        properties["DeploymentConfig"] = deployment
    return {"Type": "AWS::SageMaker::InferenceComponent", "Properties": properties}


def scaling_resources(scaling: dict[str, Any], resources: dict[str, Any], mode: str) -> dict[str, str]:
    """The scalable target (scheduled actions inside) and the policies; returns policy name -> logical id."""
    target = scaling["register_scalable_target"]
    actions = [
        {
            key: action[key]
            for key in ("ScheduledActionName", "Schedule", "Timezone", "ScalableTargetAction")
            if key in action
        }
        for action in scaling.get("scheduled_actions", [])
    ]
    properties = {key: target[key] for key in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    properties |= {"MinCapacity": target["MinCapacity"], "MaxCapacity": target["MaxCapacity"]}
    if actions:
        properties["ScheduledActions"] = actions
    scaled = "InferenceComponent" if mode == "inference_components" else "Endpoint"
    resources["ScalableTarget"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "DependsOn": [scaled],
        "Properties": properties,
    }
    policies: dict[str, str] = {}
    for policy in scaling.get("scaling_policies", []):
        key = "Policy" + _logical(policy["PolicyName"])
        body = {
            k: v
            for k, v in policy.items()
            if k not in ("ServiceNamespace", "ResourceId", "ScalableDimension")  # the target says these
        }
        resources[key] = {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Properties": {**body, "ScalingTargetId": Ref("ScalableTarget")},
        }
        policies[policy["PolicyName"]] = key
    return policies


def alarm_resources(alarms: list[dict[str, Any]], policies: dict[str, str], resources: dict[str, Any]) -> None:
    """One alarm resource per alarm; a ``{policy_arn:NAME}`` action becomes ``!Ref`` of that policy."""
    for alarm in alarms:
        properties = dict(alarm)
        actions = []
        for action in alarm.get("AlarmActions") or []:
            match = _POLICY_PLACEHOLDER.match(action)
            actions.append(Ref(policies[match.group("name")]) if match else action)
        if actions:
            properties["AlarmActions"] = actions
        resources["Alarm" + _logical(alarm["AlarmName"])] = {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _logical(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)[:200]
