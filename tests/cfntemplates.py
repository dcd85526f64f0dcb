"""cfn-lint over many templates in one process, and the checks cfn-lint does not make: every number of a template
against the answer it came from, MinCapacity <= MaxCapacity, no placeholder left."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner.cli import Runner

_runner: Runner | None = None
_PLACEHOLDER = re.compile(r"\{[^}]*\}|<[^>]*>")


def lint_errors(text: str) -> list[str]:
    """cfn-lint's errors (not warnings or informational matches) for one template; one runner for all templates."""
    global _runner
    if _runner is None:
        _runner = Runner(ConfigMixIn(regions=["us-east-1"]))
    template, errors = decode_str(text)
    if errors:
        return [str(e) for e in errors]
    assert template is not None
    return [str(m) for m in _runner.validate_template(template) if m.rule.id.startswith("E")]


def parsed(text: str) -> dict[str, Any]:
    template, errors = decode_str(text)
    assert not errors and template is not None, errors
    return template


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _strings(value: Any, in_sub: bool = False) -> Iterator[str]:
    if isinstance(value, str):
        yield value.replace("${", "").replace("}", "") if in_sub else value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, in_sub or key == "Fn::Sub")
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, in_sub)


def _without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in keys}


def _resolve_alarm_refs(config: dict[str, Any] | None, alarm_names: dict[str, str]) -> dict[str, Any] | None:
    """A DeploymentConfig with its ``!Ref`` alarm names replaced by the names of the alarms they refer to."""
    if config is None:
        return None
    out = dict(config)
    rollback = out.get("AutoRollbackConfiguration")
    if rollback:
        names = [a["AlarmName"] for a in rollback["Alarms"]]
        resolved = [alarm_names[n["Ref"]] if isinstance(n, dict) else n for n in names]
        out["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in resolved]}
    return out


def check_against_answer(template: dict[str, Any], answer: dict[str, Any]) -> None:
    """Each resource holds the answer's figures at the same place, and the template has no number the answer lacks."""
    resources = template["Resources"]
    aws = answer["hosting"]["aws"]
    compared: list[Any] = []

    def same(got: Any, want: Any, what: str) -> None:
        assert got == want, f"{what}: template {got!r} != answer {want!r}"
        compared.append(want)

    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for key, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append((key, resource.get("Properties", {})))
    config = by_type["AWS::SageMaker::EndpointConfig"][0][1]
    answer_config = aws["create_endpoint_config"]
    for got, want in zip(config["ProductionVariants"], answer_config["ProductionVariants"], strict=True):
        same(_without(got, "ModelName"), _without(want, "ModelName"), "ProductionVariant")
    if answer_config.get("AsyncInferenceConfig"):
        client = answer_config["AsyncInferenceConfig"]["ClientConfig"]
        same(config["AsyncInferenceConfig"]["ClientConfig"], client, "AsyncInferenceConfig.ClientConfig")
    alarm_names = {key: p["AlarmName"] for key, p in by_type.get("AWS::CloudWatch::Alarm", [])}
    deployment = (answer.get("deployment") or {}).get("aws") or {}
    endpoint = by_type["AWS::SageMaker::Endpoint"][0][1]
    same(_resolve_alarm_refs(endpoint.get("DeploymentConfig"), alarm_names), deployment.get("deployment_config"), "DC")
    if aws.get("create_inference_component"):
        component = by_type["AWS::SageMaker::InferenceComponent"][0][1]
        want = aws["create_inference_component"]
        same(_without(component["Specification"], "ModelName"), _without(want["Specification"], "ModelName"), "Spec")
        same(component["RuntimeConfig"], want["RuntimeConfig"], "RuntimeConfig")
        got_dc = _resolve_alarm_refs(component.get("DeploymentConfig"), alarm_names)
        same(got_dc, deployment.get("inference_component_deployment_config"), "IC DeploymentConfig")
    _check_scaling(by_type, answer, same)
    _check_alarms(by_type, answer, same)
    assert Counter(_numbers(resources)) == Counter(_numbers(compared)), "a number in the template is not the answer's"


def _check_scaling(by_type: dict[str, Any], answer: dict[str, Any], same: Any) -> None:
    scaling = answer.get("scaling")
    targets = by_type.get("AWS::ApplicationAutoScaling::ScalableTarget", [])
    if scaling is None:
        assert not targets
        return
    target = targets[0][1]
    want = scaling["aws"]["register_scalable_target"]
    same(_without(target, "ScheduledActions"), want, "ScalableTarget")
    assert target["MinCapacity"] <= target["MaxCapacity"]
    actions = [
        _without(a, "ServiceNamespace", "ResourceId", "ScalableDimension") for a in scaling["aws"]["scheduled_actions"]
    ]
    same(target.get("ScheduledActions", []), actions, "ScheduledActions")
    for action in target.get("ScheduledActions", []):
        assert action["ScalableTargetAction"]["MinCapacity"] <= action["ScalableTargetAction"]["MaxCapacity"]
    policies = {p["PolicyName"]: p for _, p in by_type.get("AWS::ApplicationAutoScaling::ScalingPolicy", [])}
    assert set(policies) == {p["PolicyName"] for p in scaling["aws"]["scaling_policies"]}
    for policy in scaling["aws"]["scaling_policies"]:
        got = policies[policy["PolicyName"]]
        assert got["ScalingTargetId"] == {"Ref": "ScalableTarget"}
        same(
            _without(got, "ScalingTargetId"),
            _without(policy, "ServiceNamespace", "ResourceId", "ScalableDimension"),
            "ScalingPolicy",
        )


def _check_alarms(by_type: dict[str, Any], answer: dict[str, Any], same: Any) -> None:
    policy_names = {key: p["PolicyName"] for key, p in by_type.get("AWS::ApplicationAutoScaling::ScalingPolicy", [])}
    alarms = {p["AlarmName"]: p for _, p in by_type.get("AWS::CloudWatch::Alarm", [])}
    scaling_alarms = (answer.get("scaling") or {}).get("aws", {}).get("alarms", [])
    wanted = [*scaling_alarms, *answer["monitoring"]["alarms"]]
    assert set(alarms) == {a["AlarmName"] for a in wanted}
    for alarm in wanted:
        got = dict(alarms[alarm["AlarmName"]])
        if "AlarmActions" in got:
            refs = got["AlarmActions"]
            assert all(isinstance(r, dict) and set(r) == {"Ref"} for r in refs), "alarm actions must !Ref a policy"
            got["AlarmActions"] = [f"{{policy_arn:{policy_names[r['Ref']]}}}" for r in refs]
        same(got, alarm, f"alarm {alarm['AlarmName']}")


def placeholders(template: dict[str, Any]) -> list[str]:
    """Strings of the resources and outputs still holding a {...} or <...> placeholder (a !Sub's ${Parameter} is
    not one; the parameters' own patterns are not values)."""
    values = [template["Resources"], template.get("Outputs", {})]
    return [s for s in _strings(values) if _PLACEHOLDER.search(s)]
