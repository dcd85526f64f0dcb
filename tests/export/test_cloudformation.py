"""The CloudFormation export: cfn-lint finds no error in the templates of the acceptance suite's answers nor of random
profiles', every number is the answer's, and a stored answer exports as it was given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from cfntemplates import check_against_answer, lint_errors, parsed, placeholders
from hypothesis import HealthCheck, given, settings
from profiles import hosting_profiles, profile

from service.engine import CompiledRuleset, ProfileRejected, evaluate
from service.export.cloudformation import ExportMeta, ExportNotPossible, TransformJobExport, cloudformation_export

CASES = Path(__file__).resolve().parents[1] / "advice" / "cases"
META = ExportMeta(decision_id=None, ruleset_version="2026.12.3", ruleset_sha256="0" * 64, engine_version="test")


def _acceptance_profiles() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            if "rejected" not in [next(iter(e)) for e in case["expect"] if isinstance(e, dict)]:
                out.append((f"{path.stem}::{case['name']}", case["profile"]))
    return out


def _check(answer: dict[str, Any]) -> str | None:
    """None when the answer exports to a template that passes every check; the first problem otherwise."""
    exported = cloudformation_export(answer, META)
    if isinstance(exported, TransformJobExport):
        assert answer["hosting"]["mode"] == "batch_transform"
        assert exported.create_transform_job == answer["hosting"]["aws"]["create_transform_job"]
        return None
    errors = lint_errors(exported)
    if errors:
        return "cfn-lint: " + "; ".join(errors)
    template = parsed(exported)
    check_against_answer(template, answer)
    left = placeholders(template)
    return f"placeholders left: {left}" if left else None


def test_acceptance_suite_answers_export_to_templates_cfn_lint_accepts(ruleset: CompiledRuleset) -> None:
    problems, modes = [], set()
    for name, data in _acceptance_profiles():
        try:
            answer = msgspec.to_builtins(evaluate(profile(data), ruleset))
        except ProfileRejected:
            continue
        modes.add(answer["hosting"]["mode"])
        problem = _check(answer)
        if problem:
            problems.append(f"{name}: {problem}")
    assert not problems, "\n".join(problems)
    assert modes == {"real_time", "serverless", "asynchronous", "inference_components", "batch_transform"}


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=hosting_profiles())
def test_random_profiles_export_to_templates_cfn_lint_accepts(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    try:
        answer = msgspec.to_builtins(evaluate(profile(data), ruleset))
    except ProfileRejected:
        return
    assert _check(answer) is None


def _worked(ruleset: CompiledRuleset, **changes: Any) -> dict[str, Any]:
    from profiles import WORKED_EXAMPLE

    return msgspec.to_builtins(evaluate(profile({**WORKED_EXAMPLE, **changes}), ruleset))


def test_step_scaling_alarms_ref_their_policies_and_metadata_names_the_decision(ruleset: CompiledRuleset) -> None:
    from profiles import WORKED_EXAMPLE

    data = {**WORKED_EXAMPLE, "traffic": {**WORKED_EXAMPLE["traffic"], "burstiness": "bursty"}}
    answer = msgspec.to_builtins(evaluate(profile(data), ruleset))
    meta = ExportMeta("0190a1b2-0000-7000-8000-000000000001", "v1", "a" * 64, "9.9")
    template = parsed(cloudformation_export(answer, meta))  # type: ignore[arg-type]
    advisor = template["Metadata"]["Advisor"]
    assert (advisor["DecisionId"], advisor["RulesetVersion"], advisor["EngineVersion"]) == (
        meta.decision_id,
        "v1",
        "9.9",
    )
    actions = [
        action
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        for action in resource["Properties"].get("AlarmActions", [])
    ]
    if answer["scaling"]["method"] == "step":
        assert actions and all(set(a) == {"Ref"} for a in actions)
    for key in ("Model", "EndpointConfig"):  # create-only: CloudFormation generates the names
        assert not {"ModelName", "EndpointConfigName"} & set(template["Resources"][key]["Properties"])


def test_an_answer_from_before_deployment_advice_still_exports(ruleset: CompiledRuleset) -> None:
    answer = _worked(ruleset)
    del answer["deployment"]
    template = parsed(cloudformation_export(answer, META))  # type: ignore[arg-type]
    assert "DeploymentConfig" not in template["Resources"]["Endpoint"]["Properties"]
    assert any("predates deployment advice" in note for note in template["Metadata"]["Advisor"]["Notes"])


def test_an_answer_without_hosting_payloads_cannot_be_exported(ruleset: CompiledRuleset) -> None:
    answer = _worked(ruleset)
    del answer["hosting"]
    with pytest.raises(ExportNotPossible, match=r"no hosting\.aws payloads"):
        cloudformation_export(answer, META)


def test_a_two_region_plan_says_to_deploy_the_stack_in_each_region(ruleset: CompiledRuleset) -> None:
    from profiles import WORKED_EXAMPLE

    answer = _worked(ruleset, sla={**WORKED_EXAMPLE["sla"], "availability": 0.9999})
    template = parsed(cloudformation_export(answer, META))  # type: ignore[arg-type]
    regions = answer["availability"]["multi_region"]["regions"]
    assert len(regions) == 2
    assert any(all(r in note for r in regions) for note in template["Metadata"]["Advisor"]["Notes"])
