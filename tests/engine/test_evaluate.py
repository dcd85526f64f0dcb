"""The engine on concrete profiles: the worked example, refusals, explanations."""

from __future__ import annotations

import copy

import pytest
from profiles import WORKED_EXAMPLE, profile

from service.engine import CompiledRuleset, ProfileRejected, evaluate


class TestWorkedExample:
    def test_base_instances_is_eleven(self, ruleset: CompiledRuleset) -> None:
        """150 RPS / (20 RPS x 0.7) = 10.71, rounded up to 11 (the study guide's answer)."""
        rec = evaluate(profile(WORKED_EXAMPLE), ruleset)
        assert rec.capacity.base_instances == 11
        assert any("ceil(150 / (20 x 0.7)) = ceil(10.7143) = 11" in step for step in rec.capacity.steps)

    def test_family_scaling_and_availability_follow_the_guide(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(WORKED_EXAMPLE), ruleset)
        assert rec.instance.family == "c"  # CPU-bound classic ML
        assert rec.instance.instance_type.startswith("ml.c")
        assert rec.scaling.method == "target_tracking"
        # 20 x 8/13 x 60: the target keeps every fleet size AZ-safe (13 over 3 AZs keeps 8 after losing 5)
        assert rec.scaling.target_value == 738.46
        assert rec.availability.multi_az and rec.availability.az_count == 3
        assert rec.capacity.az_safe_instances == 12
        assert rec.capacity.instances == 13 and rec.capacity.per_az == [5, 4, 4]

    def test_cost_is_instances_times_price(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(WORKED_EXAMPLE), ruleset)
        price = next(i.usd_per_hour for i in ruleset.catalog.instances if i.type == rec.instance.instance_type)
        assert rec.cost.usd_per_hour == pytest.approx(13 * price)
        assert rec.cost.usd_per_month == pytest.approx(13 * price * 730, abs=0.01)
        assert rec.cost.usd_per_month_peak == rec.cost.usd_per_month
        # no mean_rps: nothing says the load falls, so the expected month is the peak fleet's
        assert rec.cost.usd_per_month_expected == rec.cost.usd_per_month_peak
        assert rec.cost.usd_per_month_min == pytest.approx(12 * price * 730, abs=0.01)
        assert rec.cost.price_as_of == ruleset.catalog.as_of


class TestInstanceChoice:
    def test_smallest_type_that_holds_the_model(self, ruleset: CompiledRuleset) -> None:
        data = copy.deepcopy(WORKED_EXAMPLE)
        data["workload"]["model_memory_gib"] = 10  # x 1.5 headroom = 15 GiB of host memory
        rec = evaluate(profile(data), ruleset)
        assert rec.instance.memory_gib >= 15
        fitting = [i for i in ruleset.by_family["c"] if i.memory_gib >= 15]
        cheapest = min(i.usd_per_hour for i in fitting)
        chosen = next(i for i in fitting if i.type == rec.instance.instance_type)
        assert chosen.usd_per_hour == cheapest
        # on equal price the newest generation wins
        assert chosen.generation == max(i.generation for i in fitting if i.usd_per_hour == cheapest)
        assert any("< 15 GiB" in a.rejected_because for a in rec.instance.alternatives)

    def test_model_too_large_for_the_family_is_refused(self, ruleset: CompiledRuleset) -> None:
        data = copy.deepcopy(WORKED_EXAMPLE)
        data["workload"]["model_memory_gib"] = 4000
        with pytest.raises(ProfileRejected) as info:
            evaluate(profile(data), ruleset)
        assert info.value.code == "model-does-not-fit"
        assert info.value.field == "workload.model_memory_gib"


class TestConsistency:
    def test_mean_above_peak_is_refused(self, ruleset: CompiledRuleset) -> None:
        data = copy.deepcopy(WORKED_EXAMPLE)
        data["traffic"]["mean_rps"] = 200
        with pytest.raises(ProfileRejected, match="mean_rps"):
            evaluate(profile(data), ruleset)

    def test_window_above_peak_is_refused(self, ruleset: CompiledRuleset) -> None:
        data = copy.deepcopy(WORKED_EXAMPLE)
        data["traffic"] |= {
            "burstiness": "periodic",
            "peak_windows": [{"cron": "cron(0 8 * * ? *)", "rps": 151}],
        }
        with pytest.raises(ProfileRejected) as info:
            evaluate(profile(data), ruleset)
        assert info.value.code == "window-above-peak"

    def test_single_instance_for_an_availability_target_warns(self, ruleset: CompiledRuleset) -> None:
        data = copy.deepcopy(WORKED_EXAMPLE)
        data["sla"]["availability"] = 0.98  # below 99%: one AZ, floor 1
        data["traffic"]["peak_rps"] = 5
        rec = evaluate(profile(data), ruleset)
        assert rec.capacity.instances == 1
        assert not rec.availability.multi_az
        data["sla"]["availability"] = 0.99
        rec = evaluate(profile(data), ruleset)
        assert rec.capacity.instances >= 2


class TestExplanation:
    def test_every_fired_rule_is_listed_with_the_inputs_it_matched(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(WORKED_EXAMPLE), ruleset)
        family = next(e for e in rec.explanation if e.table == "family")
        assert family.rule_id == "cpu-classic-ml"
        assert family.matched == {"workload.bound": "cpu", "workload.model_kind": "classic_ml"}
        assert family.outcome == {"family": "c"}
        assert [e.table for e in rec.explanation][:5] == ["hosting", "family", "sizing", "scaling", "availability"]

    def test_latency_alarm_threshold_is_in_microseconds(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(WORKED_EXAMPLE), ruleset)
        latency = next(a for a in rec.monitoring.alarms if a.MetricName == "ModelLatency")
        assert latency.Threshold == 100_000.0 and latency.Unit == "Microseconds"
        cpu = next(a for a in rec.monitoring.alarms if a.MetricName == "CPUUtilization")
        assert cpu.Threshold == 80.0 * rec.instance.vcpus


class TestExactArithmetic:
    @pytest.mark.parametrize(
        ("numerator", "denominator", "expected"),
        [
            ((14.0,), (20.0, 0.7), 1),  # 20 x 0.7 is 14.000000000000002 in floats: still exactly 1
            ((150.0,), (20.0, 0.7), 11),
            ((0.3,), (0.1,), 3),  # 0.3 / 0.1 is 2.9999999999999996 in floats
            ((0.7,), (0.1,), 7),  # 0.7 / 0.1 is 6.999999999999999 in floats
            ((1.0,), (3.0,), 1),
            ((300.0,), (2, 30.0, 1.0), 5),
        ],
    )
    def test_ceil_div_is_exact_in_decimal_terms(
        self, numerator: tuple[float], denominator: tuple[float, ...], expected: int
    ) -> None:
        from service.engine.capacity import ceil_div

        assert ceil_div(*numerator, *denominator) == expected


class TestTinyRates:
    def test_a_rate_of_a_few_requests_an_hour_keeps_a_positive_target(self, ruleset: CompiledRuleset) -> None:
        """0.001 rps x 0.1 x 8/13 x 60 is under a cent a minute: the target is floored to the millionth, not to 0."""
        data = copy.deepcopy(WORKED_EXAMPLE)
        data["traffic"] |= {"peak_rps": 2.5, "per_instance_rps": 0.001}
        data["target_utilization"] = 0.1
        rec = evaluate(profile(data), ruleset)
        assert rec.scaling.target_value is not None and 0 < rec.scaling.target_value < 0.01
        assert rec.capacity.instances * rec.scaling.target_value / 60 >= 2.5
