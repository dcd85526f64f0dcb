"""The response's multi-Region parts: ``availability.multi_region`` and ``cost.multi_region``."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = ["MultiRegionCost", "MultiRegionPlan"]


class MultiRegionPlan(msgspec.Struct, kw_only=True, gc=False):
    recommended: Annotated[bool, Meta(description="Whether the objective needs a second Region.")]
    regions: Annotated[list[str], Meta(description="The Regions of the plan, the profile's first.")]
    reason: str
    single_region_sla: Annotated[
        float, Meta(description="AWS's commitment for one Region's endpoint (a rule-file value; see sla_source).")
    ]
    sla_source: str
    topology: Literal["single_region", "active_active", "warm_standby"]
    standby_share: Annotated[float, Meta(description="Share of the plan the second Region runs (1.0: all of it).")]
    failover: Annotated[list[str], Meta(description="How traffic moves to the other Region.")]
    prerequisites: Annotated[list[str], Meta(description="What must exist in every Region before it can serve.")]


class MultiRegionCost(msgspec.Struct, kw_only=True, gc=False):
    regions: list[str]
    second_region_usd_per_month_expected: float | None
    usd_per_month_expected_total: Annotated[
        float | None, Meta(description="Both Regions: the expected cost plus the second Region's.")
    ]
    basis: str
