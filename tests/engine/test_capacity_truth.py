"""Each defect an expert found in the advice, as a case that fails on the advice before 0.2.0.

The throughput a load test measured belongs to its instance type; a model fits the way it is
served; AZ-safe plans still scale in; the cost is the cost of the plan that is emitted.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
from profiles import WORKED_EXAMPLE, profile

from service.engine import CompiledRuleset, ProfileRejected, compile_ruleset, evaluate
from service.rulebook.loader import parse_ruleset, ruleset_files

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def _with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(WORKED_EXAMPLE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data


def _gpu(memory_gib: float, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "workload": {"bound": "gpu", "model_kind": "deep_learning", "model_memory_gib": memory_gib},
        "traffic": {"peak_rps": 20, "per_instance_rps": 5, "burstiness": "steady"},
        "sla": {"p99_latency_ms": 500, "availability": 0.999},
    }
    for key, value in extra.items():
        data[key] = data.get(key, {}) | value if isinstance(value, dict) else value
    return data


class TestThroughputBelongsToItsType:
    def test_the_worked_example_is_not_applied_to_a_smaller_type(self, ruleset: CompiledRuleset) -> None:
        """20 rps measured on ml.m5.xlarge (4 vCPUs) must not be applied to a 2-vCPU type."""
        rec = evaluate(profile(_with(traffic__tested_instance_type="ml.m5.xlarge")), ruleset)
        basis = rec.capacity.throughput_basis
        assert rec.instance.vcpus == 4
        assert (basis.source, basis.tested_instance_type, basis.factor) == ("extrapolated", "ml.m5.xlarge", 1.0)
        assert rec.capacity.base_instances == 11
        assert any(w.code == "throughput_extrapolated" for w in rec.warnings)
        # the peak on the basis never exceeds what the fleet carries at full load
        assert rec.capacity.instances * basis.per_instance_rps >= 150

    def test_untested_rate_is_assumed_and_says_which_type_to_test(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(WORKED_EXAMPLE), ruleset)
        assert rec.capacity.throughput_basis.source == "assumed"
        warning = next(w for w in rec.warnings if w.code == "untested_instance_type")
        assert rec.instance.instance_type in warning.message

    def test_candidates_rank_by_the_cost_of_the_plan_not_price_per_hour(self, ruleset: CompiledRuleset) -> None:
        """ml.g5.xlarge costs more an hour than ml.g6.xlarge but serves twice the rate: its fleet costs less."""
        tests = [
            {"instance_type": "ml.g6.xlarge", "per_instance_rps": 5, "p99_latency_ms": 200},
            {"instance_type": "ml.g5.xlarge", "per_instance_rps": 10, "p99_latency_ms": 150},
        ]
        data = _gpu(8, load_tests=tests)
        del data["traffic"]["per_instance_rps"]
        rec = evaluate(profile(data), ruleset)
        assert rec.instance.instance_type == "ml.g5.xlarge"
        assert rec.capacity.throughput_basis.source == "load_test"
        loser = next(a for a in rec.instance.alternatives if a.instance_type == "ml.g6.xlarge")
        assert "costlier plan" in loser.rejected_because

    def test_a_load_test_over_the_sla_is_not_a_candidate(self, ruleset: CompiledRuleset) -> None:
        tests = [
            {"instance_type": "ml.g5.xlarge", "per_instance_rps": 50, "p99_latency_ms": 900},
            {"instance_type": "ml.g6e.xlarge", "per_instance_rps": 8, "p99_latency_ms": 300},
        ]
        data = _gpu(8, load_tests=tests)
        del data["traffic"]["per_instance_rps"]
        rec = evaluate(profile(data), ruleset)
        assert rec.instance.instance_type == "ml.g6e.xlarge"
        failed = next(a for a in rec.instance.alternatives if a.instance_type == "ml.g5.xlarge")
        assert failed.rejected_because.startswith("fails the SLA")

    def test_accelerator_rates_never_carry_across_chips(self, ruleset: CompiledRuleset) -> None:
        data = _gpu(8, load_tests=[{"instance_type": "ml.g5.xlarge", "per_instance_rps": 10}])
        del data["traffic"]["per_instance_rps"]
        rec = evaluate(profile(data), ruleset)
        assert rec.capacity.throughput_basis.source == "load_test"
        assert rec.instance.instance_type == "ml.g5.xlarge"
        assert all(
            a.rejected_because.startswith(("not load-tested", "too small", "host memory"))
            for a in rec.instance.alternatives
        )

    def test_an_unknown_tested_type_is_refused_with_the_closest_names(self, ruleset: CompiledRuleset) -> None:
        with pytest.raises(ProfileRejected) as info:
            evaluate(profile(_with(traffic__tested_instance_type="ml.m5.xlarg")), ruleset)
        assert info.value.code == "unknown-instance-type"
        assert info.value.field == "traffic.tested_instance_type"
        assert "ml.m5.xlarge" in info.value.message


class TestModelsFitAsServed:
    def test_one_device_must_hold_an_unsharded_model(self, ruleset: CompiledRuleset) -> None:
        """30 GiB x 1.2 does not fit a 22.35 GiB GPU, even on an instance with four of them."""
        rec = evaluate(profile(_gpu(30, workload={"sharding": "none"})), ruleset)
        assert rec.instance.accelerator_memory_gib * 1 >= 36
        assert rec.instance.tensor_parallel_degree == 1

    def test_tensor_parallel_degree_divides_the_device_count(self, ruleset: CompiledRuleset) -> None:
        data = _gpu(60, workload={"model_kind": "llm"})
        rec = evaluate(profile(data), ruleset)
        degree = rec.instance.tensor_parallel_degree
        assert degree is not None and rec.instance.accelerator_count % degree == 0
        assert degree * rec.instance.accelerator_memory_gib >= 60 * 1.3
        assert rec.instance.memory_gib >= 60  # host memory stages the weights

    def test_inferentia2_counts_neuroncores(self, ruleset: CompiledRuleset) -> None:
        data = _gpu(
            14, workload={"model_kind": "llm"}, load_tests=[{"instance_type": "ml.inf2.8xlarge", "per_instance_rps": 2}]
        )
        rec = evaluate(profile(data), compile_ruleset(_family_first(ruleset, "inf")))
        assert rec.instance.instance_type == "ml.inf2.8xlarge"  # the xlarge's 16 GiB host memory < 14 x 1.5
        assert rec.instance.tensor_parallel_degree == 2  # 14 x 1.3 = 18.2 GiB > one NeuronCore's 16 of the chip's 32
        assert any(w.code == "neuron_compilation_required" for w in rec.warnings)

    def test_inf1_never_serves_an_llm(self, ruleset: CompiledRuleset) -> None:
        rules = _family_first(ruleset, "inf", extra_catalog=_INF1)
        data = _gpu(2, workload={"model_kind": "llm"})
        rec = evaluate(profile(data), compile_ruleset(rules))
        assert not rec.instance.instance_type.startswith("ml.inf1.")
        assert any("inf1" in a.rejected_because for a in rec.instance.alternatives)

    def test_a_gpu_model_without_its_size_is_refused(self, ruleset: CompiledRuleset) -> None:
        data = _gpu(1)
        del data["workload"]["model_memory_gib"]
        with pytest.raises(ProfileRejected) as info:
            evaluate(profile(data), ruleset)
        assert (info.value.code, info.value.field) == ("model-size-required", "workload.model_memory_gib")

    def test_a_model_that_fits_nothing_names_the_ways_out_not_a_split(self, ruleset: CompiledRuleset) -> None:
        with pytest.raises(ProfileRejected) as info:
            evaluate(profile(_gpu(2000, workload={"model_kind": "llm"})), ruleset)
        message = info.value.message
        assert info.value.code == "model-does-not-fit"
        assert "2000 GiB (as sent)" in message and "headroom x1.3" in message
        assert "fp8" in message and "int4" in message
        assert "never split across instances" in message


class TestAzSafePlansStillScale:
    def test_min_is_the_az_safe_count_at_the_mean(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(_with(traffic__mean_rps=40)), ruleset)
        assert rec.capacity.min_instances < rec.capacity.instances
        # 40 rps on 3 AZs: 3 x ceil(40 / (2 x 20)) = 3, with the floor of 3
        assert rec.capacity.min_instances == 3
        assert rec.scaling.aws.register_scalable_target.MinCapacity == 3

    def test_target_is_az_safe_for_every_fleet_size(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(_with(traffic__mean_rps=40)), ruleset)
        target = rec.scaling.target_value
        assert target is not None
        for n in range(rec.capacity.min_instances, rec.capacity.max_instances + 1):
            assert n * target / 60 <= (n - math.ceil(n / 3)) * 20

    def test_a_plan_that_does_not_survive_an_az_loss_says_when_it_overloads(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(_with(priority="cost")), ruleset)  # 2 AZs, no static stability
        assert rec.capacity.utilization_at_peak_after_az_loss is not None
        assert rec.capacity.utilization_at_peak_after_az_loss > 1
        assert any(w.code == "az_loss_overload" for w in rec.warnings)

    def test_scale_out_waits_for_the_warm_up(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(_with(workload__startup_s=900)), ruleset)
        policy = rec.scaling.aws.scaling_policies[0].TargetTrackingScalingPolicyConfiguration
        assert policy is not None and policy.ScaleOutCooldown >= 900
        variant = rec.hosting.aws.create_endpoint_config.ProductionVariants[0]
        assert variant.ContainerStartupHealthCheckTimeoutInSeconds >= 900

    def test_scheduled_capacity_arrives_one_warm_up_before_the_peak(self, ruleset: CompiledRuleset) -> None:
        window = {"cron": "cron(5 0 ? * MON *)", "end_cron": "cron(0 6 ? * MON *)", "rps": 150}
        data = _with(
            traffic__burstiness="periodic",
            traffic__mean_rps=30,
            traffic__peak_windows=[window],
            workload__startup_s=600,
        )
        rec = evaluate(profile(data), ruleset)
        assert rec.scaling.aws.scheduled_actions[0].Schedule == "cron(55 23 ? * SUN *)"

    def test_a_cron_that_cannot_be_shifted_warns(self, ruleset: CompiledRuleset) -> None:
        window = {"cron": "cron(0 0 L * ? *)", "end_cron": "cron(0 6 L * ? *)", "rps": 150}
        data = _with(traffic__burstiness="periodic", traffic__peak_windows=[window])
        rec = evaluate(profile(data), ruleset)
        assert rec.scaling.aws.scheduled_actions[0].Schedule == "cron(0 0 L * ? *)"
        assert any(w.code == "schedule_not_shifted" for w in rec.warnings)

    def test_the_scale_in_alarm_fires_when_traffic_stops(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(_with(traffic__burstiness="bursty")), ruleset)
        scale_in = next(a for a in rec.scaling.aws.alarms if a.AlarmName.endswith("scale-in-alarm"))
        assert scale_in.TreatMissingData == "breaching"
        assert scale_in.Metrics is not None
        assert any(q.Expression == "FILL(m1, 0)" and q.ReturnData for q in scale_in.Metrics)


class TestCostOfTheEmittedPlan:
    def test_expected_cost_lies_between_min_and_peak(self, ruleset: CompiledRuleset) -> None:
        rec = evaluate(profile(_with(traffic__mean_rps=40)), ruleset)
        cost = rec.cost
        assert cost.usd_per_month_min < cost.usd_per_month_expected < cost.usd_per_month_peak
        assert cost.usd_per_month == cost.usd_per_month_peak

    def test_scheduled_windows_are_priced_for_their_hours(self, ruleset: CompiledRuleset) -> None:
        window = {"cron": "cron(0 8 ? * MON-FRI *)", "end_cron": "cron(0 18 ? * MON-FRI *)", "rps": 150}
        data = _with(traffic__burstiness="periodic", traffic__mean_rps=30, traffic__peak_windows=[window])
        rec = evaluate(profile(data), ruleset)
        assert "scheduled windows" in rec.cost.basis
        assert rec.cost.usd_per_month_expected < rec.cost.usd_per_month_peak


class TestHonestAboutInputs:
    @pytest.mark.parametrize(
        ("changes", "code"),
        [
            ({"traffic__per_instance_rps": 5000}, "near_idle_fleet"),
            ({"sla__p99_latency_ms": 4}, "latency_sla_near_overhead"),
            ({"sla__availability": 0.99999}, "availability_above_rules"),
            ({"traffic__burstiness": "bursty", "traffic__mean_rps": 10}, "scale_out_slower_than_burst"),
        ],
    )
    def test_warnings(self, ruleset: CompiledRuleset, changes: dict[str, Any], code: str) -> None:
        rec = evaluate(profile(_with(**changes)), ruleset)
        assert code in {w.code for w in rec.warnings}

    def test_latency_first_lowers_the_target_and_takes_the_newest_accelerator(self, ruleset: CompiledRuleset) -> None:
        balanced = evaluate(profile(_gpu(6)), ruleset)
        latency = evaluate(profile(_gpu(6, priority="latency")), ruleset)
        assert latency.scaling.target_value is not None and balanced.scaling.target_value is not None
        assert latency.scaling.target_value <= 5 * 0.6 * 60  # planned at no more than 60% of the rate
        assert latency.capacity.utilization_at_peak < balanced.capacity.utilization_at_peak
        newest = max(i.generation for i in ruleset.by_family["g"])
        chosen = ruleset.instance_types[latency.instance.instance_type]
        assert chosen.generation == newest


_INF1 = """
  - {type: ml.inf1.xlarge, vcpus: 4, memory_gib: 8, usd_per_hour: 0.297, source: test row,
     accelerator: {kind: neuron, name: AWS Inferentia, count: 1, memory_gib: 8, cores_per_device: 4}}
"""


def _family_first(ruleset: CompiledRuleset, family: str, extra_catalog: str = "") -> Any:
    """The shipped rules with a first family rule sending GPU-bound work to ``family``."""
    files = dict(ruleset_files(RULES_DIR))
    rule = (
        f"  - id: test-{family}-first\n    when:\n      workload.bound: gpu\n    then: {{family: {family}}}\n"
        "    because: A test rule that sends GPU-bound work to one family.\n"
    )
    files["tables/family.yaml"] = files["tables/family.yaml"].replace("rules:\n", "rules:\n" + rule, 1)
    files["catalog.yaml"] += extra_catalog
    return parse_ruleset(files, label="test-rules")


class TestAzSafeUpToThePeak:
    def test_a_ruleset_may_keep_the_static_count_at_the_peak(self, ruleset: CompiledRuleset) -> None:
        """az_safe_up_to: peak guards loads up to the stated peak only: the worked example keeps 4 + 4 + 4."""
        files = dict(ruleset_files(RULES_DIR))
        old = "{multi_az: true, az_count: 3, survives_az_loss: true, min_instances: 3, degraded_utilization: 1.0}"
        assert files["tables/availability.yaml"].count(old) == 2
        files["tables/availability.yaml"] = files["tables/availability.yaml"].replace(
            old, old[:-1] + ", az_safe_up_to: peak}"
        )
        peak_rules = compile_ruleset(parse_ruleset(files, label="test-rules"))
        rec = evaluate(profile(WORKED_EXAMPLE), peak_rules)
        assert (rec.capacity.instances, rec.capacity.per_az) == (12, [4, 4, 4])
        assert rec.scaling.target_value == 800.0  # 20 x 8/12 x 60
        # every fleet size up to the peak's is AZ-safe; above the forecast it is not promised
        for n in range(rec.capacity.min_instances, rec.capacity.instances + 1):
            assert n * 800 / 60 <= (n - math.ceil(n / 3)) * 20
        default = evaluate(profile(WORKED_EXAMPLE), ruleset)
        assert default.capacity.instances == 13
