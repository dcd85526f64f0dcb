"""What-if counterfactuals: the plan again with one input changed, priced against the plan itself.

Asked for on demand (``GET /v1/decisions/{id}/what-if``, ``advisor recommend --what-if``), never part of the
answer to ``POST /v1/recommendations``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from service.contract.recommendation import HostingMode, RulesetRef

__all__ = ["WhatIf", "WhatIfNotPossible", "WhatIfReport"]


class WhatIf(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One counterfactual the engine planned: the plan it gives and what it costs next to the decision's."""

    change: Annotated[
        str,
        Meta(
            description="What was changed, as `input=value`: `az_count=2`, `target_utilization=0.8`, `family=m`, "
            "`generation=c7i`, `hosting=serverless` (the cheapest other hosting mode that could serve)."
        ),
    ]
    instance_type: Annotated[str | None, Meta(description="None for serverless (no instance type).")]
    instances: Annotated[
        int | None, Meta(description="Instances at the peak under the changed input; None for serverless.")
    ]
    usd_per_month_expected: Annotated[
        float, Meta(description="Expected monthly cost, as `cost` computes it (both Regions when the plan has two).")
    ]
    delta_usd_per_month: Annotated[
        float, Meta(description="usd_per_month_expected minus the decision's own (negative: cheaper).")
    ]
    note: Annotated[
        str,
        Meta(
            description="What changed and what to know before relying on it: the throughput basis on another type, "
            "rules that decide differently, warnings the plan does not have."
        ),
    ]
    hosting_mode: Annotated[HostingMode, Meta(description="The hosting mode of the counterfactual's plan.")] = (
        "real_time"
    )


class WhatIfNotPossible(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A counterfactual asked for that gives no plan: the engine refuses it, or it does not apply to this plan."""

    change: str
    reason: str
    code: Annotated[
        str | None, Meta(description="The engine's refusal code (as a 422 would name it); null: does not apply.")
    ] = None


class WhatIfReport(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """The decision's plan and its counterfactuals, all evaluated by the same engine under the same ruleset."""

    decision_id: Annotated[str | None, Meta(description="The audited decision; null for a profile not audited.")]
    ruleset: RulesetRef
    instance_type: Annotated[str | None, Meta(description="The decision's instance type (None: serverless).")]
    instances: Annotated[int | None, Meta(description="The decision's instances at the peak (None: serverless).")]
    usd_per_month_expected: Annotated[
        float,
        Meta(
            description="The decision's own expected monthly cost; with a second Region, both Regions' "
            "(cost.multi_region.usd_per_month_expected_total). Outside the catalog's Region, at its prices."
        ),
    ]
    what_if: list[WhatIf]
    not_possible: Annotated[
        list[WhatIfNotPossible],
        Meta(description="Counterfactuals left out of what_if, each with the reason (e.g. the model fits no type)."),
    ] = []
    hosting_mode: Annotated[HostingMode, Meta(description="The decision's hosting mode.")] = "real_time"
