"""An answer as a CloudFormation template (YAML): the model, endpoint configuration, endpoint (with its
``DeploymentConfig``), inference component, scalable target (its scheduled actions inside, as CloudFormation has no
scheduled-action resource), scaling policies and alarms whose actions ``!Ref`` the policies.

A pure function of the answer's JSON, so a stored decision exports from its stored answer. What the advisor cannot
know (image, model data, execution role, S3 output path, subnets, KMS key) is a parameter. Resources that cannot be
updated in place (the model and the endpoint configuration: every property is create-only) get generated names, so a
change replaces them and the endpoint moves to the new configuration through its deployment policy. Batch transform
has no CloudFormation resource: the export is the ``CreateTransformJob`` request.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from service.export.cfn_resources import alarm_resources, endpoint_resources, scaling_resources
from service.export.cfn_yaml import Ref, dump

__all__ = ["ExportMeta", "ExportNotPossible", "TransformJobExport", "as_yaml", "cloudformation_export"]


class ExportNotPossible(Exception):
    """The stored answer lacks what the template needs (a 409: the reason says which part)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ExportMeta:
    """Where the answer comes from: the decision (None for a profile answered locally), ruleset and engine."""

    decision_id: str | None
    ruleset_version: str
    ruleset_sha256: str
    engine_version: str


@dataclass(frozen=True, slots=True)
class TransformJobExport:
    """Batch transform: CloudFormation has no transform-job resource; the request to send instead."""

    note: str
    create_transform_job: dict[str, Any]


_NOTE_BATCH = (
    "CloudFormation has no resource for a SageMaker transform job: run the CreateTransformJob request below "
    "(a new TransformJobName for each run), from a pipeline or a scheduler."
)


def cloudformation_export(answer: dict[str, Any], meta: ExportMeta) -> str | TransformJobExport:
    """The template (YAML text) for an endpoint answer; the transform-job request for batch transform.

    Raises:
        ExportNotPossible: the answer holds no hosting payloads (made before they were part of the answer).
    """
    answer = copy.deepcopy(answer)
    hosting = answer.get("hosting")
    aws = hosting.get("aws") if isinstance(hosting, dict) else None
    if not isinstance(aws, dict):
        raise ExportNotPossible(
            "the stored answer has no hosting.aws payloads (it was made before answers carried them), so there "
            "is no endpoint configuration to translate; replay the decision for a current answer and export that."
        )
    if aws.get("create_transform_job"):
        return TransformJobExport(note=_NOTE_BATCH, create_transform_job=aws["create_transform_job"])
    if not aws.get("create_endpoint_config"):
        raise ExportNotPossible("the stored answer has neither an endpoint configuration nor a transform job.")
    mode = str(hosting.get("mode", "real_time"))  # type: ignore[union-attr]
    resources, parameters, conditions = endpoint_resources(answer, mode)
    scaling = answer.get("scaling")
    policies: dict[str, str] = {}
    if isinstance(scaling, dict):
        policies = scaling_resources(scaling["aws"], resources, mode)
    alarms = [*(scaling or {}).get("aws", {}).get("alarms", []), *answer.get("monitoring", {}).get("alarms", [])]
    alarm_resources(alarms, policies, resources)
    _link_rollback_alarms(resources)
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"SageMaker {mode.replace('_', '-')} hosting as advised"
        + (f" (decision {meta.decision_id})" if meta.decision_id else ""),
        "Metadata": {"Advisor": _metadata(answer, meta, mode)},
        "Parameters": parameters,
    }
    if conditions:
        template["Conditions"] = conditions
    template["Resources"] = resources
    template["Outputs"] = {"EndpointName": {"Value": resources["Endpoint"]["Properties"]["EndpointName"]}}
    return dump(template, _header(meta, mode))


def as_yaml(exported: str | TransformJobExport) -> str:
    """The export as YAML text: the template, or for batch transform the note and the request under it."""
    if isinstance(exported, str):
        return exported
    return dump({"Note": exported.note, "CreateTransformJob": exported.create_transform_job}, exported.note)


def _link_rollback_alarms(resources: dict[str, Any]) -> None:
    """Auto-rollback alarm names become ``!Ref`` of the alarms in the template, so they exist first."""
    by_name = {
        r["Properties"]["AlarmName"]: key for key, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    for key in ("Endpoint", "InferenceComponent"):
        config = resources.get(key, {}).get("Properties", {}).get("DeploymentConfig")
        rollback = (config or {}).get("AutoRollbackConfiguration")
        if rollback:
            for alarm in rollback["Alarms"]:
                if alarm["AlarmName"] in by_name:
                    alarm["AlarmName"] = Ref(by_name[alarm["AlarmName"]])


def _metadata(answer: dict[str, Any], meta: ExportMeta, mode: str) -> dict[str, Any]:
    availability = answer.get("availability") or {}
    regions = (availability.get("multi_region") or {}).get("regions") or []
    notes = [
        "Deploy this stack once in each Region of the plan: " + ", ".join(regions) + "."
        if len(regions) > 1
        else "One Region: deploy the stack where the endpoint should run.",
    ]
    if not answer.get("deployment"):
        notes.append("The answer predates deployment advice: the endpoint keeps AWS's default update policy.")
    return {
        "DecisionId": meta.decision_id or "none (answered locally from a profile)",
        "RulesetVersion": meta.ruleset_version,
        "RulesetSha256": meta.ruleset_sha256,
        "EngineVersion": meta.engine_version,
        "HostingMode": mode,
        "Notes": notes,
    }


def _header(meta: ExportMeta, mode: str) -> str:
    return (
        f"CloudFormation template for a SageMaker {mode} answer of the hosting advisor.\n"
        f"Ruleset {meta.ruleset_version}, engine {meta.engine_version}"
        + (f", decision {meta.decision_id}" if meta.decision_id else "")
        + ".\nFill in the parameters (image, model data, execution role, subnets, KMS key) when you create the stack."
    )
