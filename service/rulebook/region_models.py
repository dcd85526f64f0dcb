"""Typed model of the availability table's ``multi_region`` block: when one Region is not enough, and the plan."""

from __future__ import annotations

from pydantic import Field

from service.rulebook.strict import Strict

__all__ = ["MultiRegionLimits"]

REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d$"


class MultiRegionLimits(Strict):
    single_region_sla: float = Field(
        gt=0, lt=1, description="The Monthly Uptime Percentage AWS commits to for one Region's endpoint, as a fraction."
    )
    sla_source: str = Field(min_length=10, description="Where that figure comes from (primary or secondary).")
    standby_share: float = Field(
        gt=0,
        le=1,
        description="Share of the primary Region's plan the second Region runs: 1.0 is active-active, each Region "
        "sized to carry the whole load alone.",
    )
    second_region: dict[str, str] = Field(
        min_length=1, description="For each primary Region, the Region the plan adds (same partition)."
    )
    source: str = Field(min_length=10, description="Why these Regions and this share.")
