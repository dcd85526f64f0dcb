"""Models of rule test files (``rules/tests/*.yaml``): a profile and what the answer must hold."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.rulebook.strict import Strict

__all__ = ["RuleTestCase", "RuleTestFile"]


class RuleTestCase(Strict):
    name: str = Field(min_length=1, description="What the case shows.")
    profile: dict[str, Any] = Field(description="A WorkloadProfile, as POSTed to /v1/recommendations.")
    expect: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted paths into the recommendation and the value each must have, "
        "e.g. capacity.base_instances: 11, capacity.per_az.0: 4.",
    )
    fired: list[str] = Field(default_factory=list, description="Rule ids that must appear in the explanation.")
    not_fired: list[str] = Field(default_factory=list, description="Rule ids that must not fire.")
    warnings: list[str] = Field(default_factory=list, description="Warning codes that must be present.")
    rejected: str | None = Field(
        default=None,
        description="Expect the profile to be refused with this code (e.g. model-does-not-fit; the older "
        "underscore spelling model_does_not_fit is accepted).",
    )


class RuleTestFile(Strict):
    cases: list[RuleTestCase] = Field(min_length=1)
