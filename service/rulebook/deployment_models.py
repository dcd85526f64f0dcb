"""Typed models of the deployment table (``rules/tables/deployment.yaml``): how a new model version is rolled out.

Bounds are botocore's (sagemaker ``TrafficRoutingConfig``, ``RollingUpdatePolicy``,
``InferenceComponentRollingUpdatePolicy``): a canary at most 50 % of the variant's instances, linear steps 10-50 %,
rolling batches 5-50 %, waits 0-3600 s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from service.rulebook.strict import Strict

__all__ = ["DeploymentOutcome"]


class DeploymentOutcome(Strict):
    """A blue/green update (``traffic``: all at once, canary or linear) or a rolling one (``batch_percent``)."""

    strategy: Literal["blue_green", "rolling"]
    traffic: Literal["all_at_once", "canary", "linear"] | None = Field(
        default=None, description="Blue/green only: how traffic moves to the new fleet."
    )
    canary_percent: int | None = Field(
        default=None, ge=1, le=50, description="Canary: share of the variant's instances (at most 50 %)."
    )
    linear_step_percent: int | None = Field(
        default=None, ge=10, le=50, description="Linear: share of the instances per step (10-50 %)."
    )
    batch_percent: int | None = Field(
        default=None, ge=5, le=50, description="Rolling: share of the instances (or copies) per batch (5-50 %)."
    )
    wait_s: int = Field(ge=0, le=3600, description="WaitIntervalInSeconds: baking time after each step.")
    termination_wait_s: int = Field(
        default=0, ge=0, le=3600, description="Blue/green: TerminationWaitInSeconds, the old fleet kept after the end."
    )
    auto_rollback: bool = Field(default=True, description="Roll back when a health alarm (errors, latency) trips.")

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentOutcome:
        if self.strategy == "rolling":
            if self.batch_percent is None or self.traffic is not None:
                raise ValueError("a rolling update gives batch_percent and no traffic")
        elif self.traffic is None or self.batch_percent is not None:
            raise ValueError("a blue/green update gives traffic and no batch_percent")
        if (self.traffic == "canary") != (self.canary_percent is not None):
            raise ValueError("canary_percent goes with traffic canary, and only with it")
        if (self.traffic == "linear") != (self.linear_step_percent is not None):
            raise ValueError("linear_step_percent goes with traffic linear, and only with it")
        return self
