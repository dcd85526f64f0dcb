"""A second Region above one Region's commitment: warned, priced in the cost and in the what-if figures."""

from __future__ import annotations

import copy
from typing import Any

from profiles import WORKED_EXAMPLE, profile

from service.engine import CompiledRuleset, evaluate
from service.engine.whatif import what_if_report


def _profile(availability: float, region: str = "us-east-1") -> dict[str, Any]:
    data = copy.deepcopy(WORKED_EXAMPLE)
    data["sla"]["availability"] = availability
    data["region"] = region
    return data


def test_above_the_single_region_commitment_the_plan_and_the_what_if_pay_for_two_regions(
    ruleset: CompiledRuleset,
) -> None:
    rec = evaluate(profile(_profile(0.9999)), ruleset)
    plan = rec.availability.multi_region
    assert plan is not None and plan.recommended and len(plan.regions) == 2
    assert plan.single_region_sla == ruleset.source.tables["availability"].multi_region.single_region_sla
    assert "exceeds_single_region_sla" in {w.code for w in rec.warnings}
    assert any("SigV4" in note for note in plan.failover)
    regional = rec.cost.multi_region
    assert regional is not None and rec.cost.usd_per_month_expected is not None
    assert regional.second_region_usd_per_month_expected == round(
        rec.cost.usd_per_month_expected * plan.standby_share, 2
    )
    assert regional.usd_per_month_expected_total == round(
        rec.cost.usd_per_month_expected + regional.second_region_usd_per_month_expected, 2
    )
    report = what_if_report(profile(_profile(0.9999)), ruleset)
    assert report.usd_per_month_expected == regional.usd_per_month_expected_total


def test_within_the_commitment_one_region_and_one_bill(ruleset: CompiledRuleset) -> None:
    rec = evaluate(profile(_profile(0.999)), ruleset)
    plan = rec.availability.multi_region
    assert plan is not None and not plan.recommended and plan.regions == ["us-east-1"]
    assert "exceeds_single_region_sla" not in {w.code for w in rec.warnings}
    assert rec.cost.multi_region is None
    assert what_if_report(profile(_profile(0.999)), ruleset).usd_per_month_expected == rec.cost.usd_per_month_expected


def test_another_region_than_the_catalogs_has_no_prices(ruleset: CompiledRuleset) -> None:
    rec = evaluate(profile(_profile(0.999, "ap-south-1")), ruleset)
    cost = rec.cost
    assert not cost.prices_known and cost.region == "ap-south-1"
    assert (cost.usd_per_hour, cost.usd_per_month_expected, cost.usd_per_month_min, cost.usd_per_month_peak) == (
        None,
        None,
        None,
        None,
    )
    same = evaluate(profile(_profile(0.999)), ruleset)
    assert rec.capacity == same.capacity and rec.instance == same.instance, "the plan does not depend on prices"
