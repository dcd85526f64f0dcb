"""An expert's acceptance suite: realistic workloads and what a SageMaker engineer checks in the answer.

Each case in ``cases/*.yaml`` is a profile as a caller POSTs it and a list of properties of the answer
(``expect``), taken from the small vocabulary in ``PROPERTIES`` below: constraints on the type and
family, utilisation at the peak and after an AZ loss, cost bounds, warnings present or absent, AWS
payloads that botocore accepts. They are properties, not snapshots: an answer may change in ways an
expert would accept without failing a case.

Every answered case is also held to ``BASELINE`` (payloads valid and consistent with the plan, cost
ordered, the peak carried, scale-out no faster than a new instance warms up, and, where the plan says
it survives an AZ loss, the rest carrying the peak).

A case the engine answers in a way the expert would not sign keeps the expert's expectation and is
marked ``xfail: <why>`` in its file; pytest's xfail is strict, so the mark fails once the engine is
fixed and must then be removed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import pytest
import yaml
from botocore.session import get_session
from botocore.validate import ParamValidator
from emitted import TRANSFORM_TYPES, emitted_requests

from service.contract import Recommendation, WorkloadProfile
from service.engine import CompiledRuleset, ProfileRejected, compile_ruleset, evaluate
from service.rulebook.loader import load_ruleset

CASES_DIR = Path(__file__).parent / "cases"
RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
MIN_CASES = 30
CASE_KEYS = {"name", "why", "profile", "expect", "xfail"}


@pytest.fixture(scope="module")
def ruleset() -> CompiledRuleset:
    return compile_ruleset(load_ruleset(RULES_DIR))


# ------------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    why: str
    profile: dict[str, Any]
    expect: list[tuple[str, Any]]
    xfail: str | None

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


def _load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for raw in doc["cases"]:
            unknown = set(raw) - CASE_KEYS
            assert not unknown, f"{path.name}: case {raw.get('name')!r} has unknown keys {sorted(unknown)}"
            expect: list[tuple[str, Any]] = []
            for item in raw.get("expect") or []:
                assert isinstance(item, dict) and len(item) == 1, (
                    f"{path.name}: case {raw.get('name')!r}: each expect item is one `property: argument`, got {item!r}"
                )
                ((key, arg),) = item.items()
                expect.append((key, arg))
            cases.append(
                Case(
                    file=path.stem,
                    name=raw["name"],
                    why=raw.get("why", ""),
                    profile=raw["profile"],
                    expect=expect,
                    xfail=raw.get("xfail"),
                )
            )
    return cases


CASES = _load_cases()


# ------------------------------------------------------------------------------------------- helpers


class PropertyFailed(Exception):
    """A property does not hold; the message shows what was seen."""


@dataclass(frozen=True)
class Ctx:
    rec: Recommendation
    data: dict[str, Any]  # the answer as JSON builtins
    profile: WorkloadProfile
    ruleset: CompiledRuleset


Checker = Callable[[Ctx, Any], None]
PROPERTIES: dict[str, Checker] = {}


def prop(name: str) -> Callable[[Checker], Checker]:
    def register(fn: Checker) -> Checker:
        PROPERTIES[name] = fn
        return fn

    return register


def _fail(msg: str) -> NoReturn:
    raise PropertyFailed(msg)


def _between(what: str, value: float, bounds: list[float]) -> None:
    lo, hi = bounds
    if not lo <= value <= hi:
        _fail(f"{what} = {value}, outside [{lo}, {hi}]")


def _lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (list indexes as numbers); None where any step is missing."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
        if data is None:
            return None
    return data


def _subset(what: str, actual: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Each wanted field equals the actual one; a list in ``wanted`` means one of its values."""
    wrong = []
    for key, want in wanted.items():
        if key not in actual:
            wrong.append(f"{key}: no such field")
            continue
        got = actual[key]
        options = want if isinstance(want, list) else [want]
        ok = any(
            (math.isclose(got, w, rel_tol=1e-9) if isinstance(got, float) and isinstance(w, int | float) else got == w)
            for w in options
        )
        if not ok:
            wrong.append(f"{key} = {got!r}, wanted {'one of ' if isinstance(want, list) else ''}{want!r}")
    if wrong:
        _fail(f"{what}: " + "; ".join(wrong))


def _rate(ctx: Ctx) -> float:
    return ctx.rec.capacity.throughput_basis.per_instance_rps


def _target_per_instance_rps(ctx: Ctx) -> float:
    """What the policies hold one instance at: the target value, or the step policy's scale-out alarm."""
    scaling = ctx.rec.scaling
    if scaling.target_value is not None:
        return scaling.target_value / 60
    out = [a for a in scaling.aws.alarms if a.ComparisonOperator.startswith("Greater")]
    if len(out) != 1:
        _fail(f"cannot find the one scale-out alarm among {[a.AlarmName for a in scaling.aws.alarms]}")
    return out[0].Threshold / 60


def _group_memory_gib(ctx: Ctx) -> float:
    """Accelerator memory of the devices that hold one copy of the model (TP degree in NeuronCores on Neuron)."""
    inst = ctx.rec.instance
    accel = ctx.ruleset.instance_types[inst.instance_type].accelerator
    if accel is None:
        _fail(f"{inst.instance_type} has no accelerator")
    degree = inst.tensor_parallel_degree or 1
    return degree * accel.memory_gib / accel.cores_per_device


_CRON = re.compile(r"^cron\((\d{1,2}) (\d{1,2}) (\S+ \S+ \S+ \S+)\)$")


def _cron_minutes(expr: str) -> tuple[int, str]:
    """(minute of day, the other four fields) of a cron with a fixed minute and hour."""
    m = _CRON.match(expr)
    if m is None:
        _fail(f"cannot read {expr!r}: this suite checks crons with one minute and one hour")
    return int(m.group(2)) * 60 + int(m.group(1)), m.group(3)


_session = get_session()
_MODELS = {name: _session.get_service_model(name) for name in ("application-autoscaling", "cloudwatch", "sagemaker")}
_validator = ParamValidator()


def _payloads(rec: Recommendation) -> Iterator[tuple[str, str, Any]]:
    return emitted_requests(rec)


# ------------------------------------------------------------------------------------------- the vocabulary
# instance


@prop("family_in")
def _family_in(ctx: Ctx, families: list[str]) -> None:
    if ctx.rec.instance.family not in families:
        _fail(f"family {ctx.rec.instance.family!r} ({ctx.rec.instance.instance_type}), wanted one of {families}")


@prop("instance_type_in")
def _type_in(ctx: Ctx, types: list[str]) -> None:
    if ctx.rec.instance.instance_type not in types:
        _fail(f"instance type {ctx.rec.instance.instance_type!r}, wanted one of {types}")


@prop("instance_type_not_in")
def _type_not_in(ctx: Ctx, types: list[str]) -> None:
    if ctx.rec.instance.instance_type in types:
        _fail(f"instance type {ctx.rec.instance.instance_type!r} is one of those excluded")


@prop("accelerator_memory_per_device_gte")
def _device_memory(ctx: Ctx, gib: float) -> None:
    got = ctx.rec.instance.accelerator_memory_gib
    if got < gib:
        _fail(f"{ctx.rec.instance.instance_type}: {got} GiB per accelerator device < {gib}")


@prop("tp_group_memory_gte")
def _tp_group_memory(ctx: Ctx, gib: float) -> None:
    got = _group_memory_gib(ctx)
    if got < gib:
        inst = ctx.rec.instance
        _fail(
            f"{inst.instance_type} at TP degree {inst.tensor_parallel_degree}: "
            f"the devices holding the model have {got} GiB < {gib}"
        )


@prop("host_memory_gib_gte")
def _host_memory(ctx: Ctx, gib: float) -> None:
    if ctx.rec.instance.memory_gib < gib:
        _fail(f"{ctx.rec.instance.instance_type}: {ctx.rec.instance.memory_gib} GiB of host memory < {gib}")


@prop("sharding")
def _sharding(ctx: Ctx, sharding: str) -> None:
    if ctx.rec.instance.sharding != sharding:
        _fail(f"sharding {ctx.rec.instance.sharding!r} ({ctx.rec.instance.instance_type}), wanted {sharding!r}")


@prop("tp_degree")
def _tp_degree(ctx: Ctx, degree: int | list[int]) -> None:
    got = ctx.rec.instance.tensor_parallel_degree
    if got not in (degree if isinstance(degree, list) else [degree]):
        _fail(f"tensor_parallel_degree {got} ({ctx.rec.instance.instance_type}), wanted {degree}")


@prop("alternatives_for")
def _alternatives_for(ctx: Ctx, wanted: dict[str, str]) -> None:
    for instance_type, phrase in wanted.items():
        said = [a.rejected_because for a in ctx.rec.instance.alternatives if a.instance_type == instance_type]
        if not said:
            _fail(f"{instance_type} is not among the alternatives")
        if not all(phrase in why for why in said):
            _fail(f"{instance_type}: wanted every reason to say {phrase!r}, saw {said}")


# ------------------------------------------------------------------------------------------- throughput and capacity


@prop("throughput_basis")
def _throughput_basis(ctx: Ctx, wanted: dict[str, Any]) -> None:
    _subset("throughput_basis", ctx.data["capacity"]["throughput_basis"], wanted)


@prop("base_instances")
def _base_instances(ctx: Ctx, n: int) -> None:
    if ctx.rec.capacity.base_instances != n:
        _fail(f"base_instances {ctx.rec.capacity.base_instances}, wanted {n}")


@prop("instances_between")
def _instances_between(ctx: Ctx, bounds: list[int]) -> None:
    c = ctx.rec.capacity
    _between(f"instances at the peak ({' + '.join(map(str, c.per_az))})", c.instances, bounds)


@prop("per_az")
def _per_az(ctx: Ctx, layout: list[int]) -> None:
    if ctx.rec.capacity.per_az != layout:
        _fail(f"per_az {ctx.rec.capacity.per_az}, wanted {layout}")


@prop("min_instances_gte")
def _min_instances(ctx: Ctx, n: int) -> None:
    if ctx.rec.capacity.min_instances < n:
        _fail(f"min_instances {ctx.rec.capacity.min_instances} < {n}")


@prop("utilization_at_peak_lte")
def _util_lte(ctx: Ctx, limit: float) -> None:
    got = ctx.rec.capacity.utilization_at_peak
    if got > limit:
        _fail(f"utilization_at_peak {got} > {limit}")


@prop("utilization_at_peak_gte")
def _util_gte(ctx: Ctx, limit: float) -> None:
    got = ctx.rec.capacity.utilization_at_peak
    if got < limit:
        _fail(f"utilization_at_peak {got} < {limit}: the fleet is larger than the load needs")


def _copy_rate(ctx: Ctx) -> float:
    """One inference component copy's rate: the instance's, in proportion to the cores the copy reserves."""
    needs = ctx.rec.hosting.aws.create_inference_component.Specification.ComputeResourceRequirements
    return _rate(ctx) * needs.NumberOfCpuCoresRequired / ctx.rec.instance.vcpus


@prop("az_loss_utilization_lte")
def _az_loss(ctx: Ctx, limit: float) -> None:
    c = ctx.rec.capacity
    got = c.utilization_at_peak_after_az_loss
    if got is None:
        _fail("utilization_at_peak_after_az_loss is null (single AZ?)")
    # recomputed, so that the property does not rest on the engine's own arithmetic
    if ctx.rec.hosting.mode == "inference_components":  # the copies on the instances left carry the peak
        copies = ctx.rec.hosting.aws.create_inference_component.RuntimeConfig.CopyCount
        k = ctx.rec.availability.az_count
        survivors, rate = copies - -(-copies // k), _copy_rate(ctx)
    else:
        survivors, rate = c.instances - max(c.per_az), _rate(ctx)
    peak = ctx.profile.traffic.peak_rps
    if peak is None:  # an LLM's peak in streams: requests per second by Little's law with its stream duration
        peak = ctx.profile.traffic.peak_concurrency / ctx.rec.llm.stream_duration_s
    recomputed = math.inf if survivors == 0 else peak / (survivors * rate)
    if max(got, recomputed) > limit + 1e-4:
        _fail(f"after losing the largest AZ ({c.per_az}) the rest run at {got} (recomputed {recomputed:.4f}) > {limit}")


@prop("availability")
def _availability(ctx: Ctx, wanted: dict[str, Any]) -> None:
    _subset("availability", ctx.data["availability"], wanted)


# ------------------------------------------------------------------------------------------- scaling


@prop("scaling_method")
def _scaling_method(ctx: Ctx, method: str) -> None:
    if ctx.rec.scaling.method != method:
        _fail(f"scaling.method {ctx.rec.scaling.method!r}, wanted {method!r}")


@prop("target_utilization_lte")
def _target_util(ctx: Ctx, limit: float) -> None:
    share = _target_per_instance_rps(ctx) / _rate(ctx)
    if share > limit + 1e-9:
        _fail(f"the policies hold an instance at {share:.4f} of its {_rate(ctx)} rps basis > {limit}")


@prop("scale_out_cooldown_gte_startup")
def _cooldown(ctx: Ctx, on: bool) -> None:
    if not on:
        return
    startup = ctx.rec.hosting.startup_s
    seen = []
    for p in ctx.rec.scaling.aws.scaling_policies:
        if p.TargetTrackingScalingPolicyConfiguration is not None:
            seen.append((p.PolicyName, p.TargetTrackingScalingPolicyConfiguration.ScaleOutCooldown))
        step = p.StepScalingPolicyConfiguration
        if step is not None and any(a.ScalingAdjustment > 0 for a in step.StepAdjustments):
            seen.append((p.PolicyName, step.Cooldown))
    if not seen:
        _fail("no scale-out policy found")
    short = [(name, cooldown) for name, cooldown in seen if cooldown < startup]
    if short:
        _fail(f"scale-out cooldown below the {startup} s warm-up: {short}")


@prop("scheduled_windows_lead_startup")
def _scheduled(ctx: Ctx, on: bool) -> None:
    """Each window's capacity is scheduled one warm-up (to the minute) before it, AZ-safe where promised,
    and each end_cron brings the minimum back to the plan's."""
    if not on:
        return
    rec = ctx.rec
    actions = rec.scaling.aws.scheduled_actions
    startup = rec.hosting.startup_s
    k = rec.availability.az_count
    for i, window in enumerate(ctx.profile.traffic.peak_windows or ()):
        at, days = _cron_minutes(window.cron)
        starts = []
        for a in actions:
            if a.Schedule == window.end_cron:
                continue
            when, other = _cron_minutes(a.Schedule)
            if other == days:
                starts.append(((at - when) % (24 * 60), a))
        if not starts:
            _fail(f"peak_windows[{i}] {window.cron}: no scheduled action on the same days")
        lead_min, action = min(starts, key=lambda s: s[0])
        lead = lead_min * 60
        if not startup <= lead < startup + 60:
            _fail(f"peak_windows[{i}] {window.cron}: {action.Schedule} starts {lead} s before it; warm-up {startup} s")
        n = action.ScalableTargetAction.MinCapacity
        survivors = n - -(-n // k) if rec.availability.survives_az_loss and k > 1 else n
        if survivors * _rate(ctx) < window.rps:
            _fail(
                f"peak_windows[{i}]: MinCapacity {n} ({survivors} after an AZ loss) x {_rate(ctx)} rps < {window.rps}"
            )
        if window.end_cron is not None:
            ends = [a for a in actions if a.Schedule == window.end_cron]
            if not ends:
                _fail(f"peak_windows[{i}]: nothing scheduled at its end_cron {window.end_cron}")
            if any(a.ScalableTargetAction.MinCapacity != rec.capacity.min_instances for a in ends):
                _fail(
                    f"peak_windows[{i}]: at {window.end_cron} MinCapacity "
                    f"{[a.ScalableTargetAction.MinCapacity for a in ends]}, "
                    f"wanted the plan's {rec.capacity.min_instances}"
                )


# ------------------------------------------------------------------------------------------- cost


@prop("cost_order")
def _cost_order(ctx: Ctx, on: bool) -> None:
    c = ctx.rec.cost
    if on and not c.prices_known:  # another Region than the catalog's: no figure is guessed
        figures = (c.usd_per_hour, c.usd_per_month_min, c.usd_per_month_expected, c.usd_per_month_peak)
        if any(f is not None for f in figures):
            _fail(f"prices unknown, yet figures {figures}")
        return
    if on and not c.usd_per_month_min <= c.usd_per_month_expected <= c.usd_per_month_peak:  # type: ignore[operator]
        _fail(f"min {c.usd_per_month_min}, expected {c.usd_per_month_expected}, peak {c.usd_per_month_peak}")


@prop("cost_monthly_expected_between")
def _cost_expected(ctx: Ctx, bounds: list[float]) -> None:
    what = ctx.rec.instance.instance_type if ctx.rec.instance else ctx.rec.hosting.mode
    _between(f"usd_per_month_expected ({what})", ctx.rec.cost.usd_per_month_expected, bounds)


@prop("cost_monthly_peak_between")
def _cost_peak(ctx: Ctx, bounds: list[float]) -> None:
    c = ctx.rec
    _between(
        f"usd_per_month_peak ({c.capacity.instances} x {c.instance.instance_type})", c.cost.usd_per_month_peak, bounds
    )


# ------------------------------------------------------------------------------- warnings, payloads, absences


@prop("warnings_include")
def _warnings_include(ctx: Ctx, codes: list[str]) -> None:
    seen = [w.code for w in ctx.rec.warnings]
    missing = [c for c in codes if c not in seen]
    if missing:
        _fail(f"missing {missing}; warnings seen {seen}")


@prop("warnings_exclude")
def _warnings_exclude(ctx: Ctx, codes: list[str]) -> None:
    present = [w for w in ctx.rec.warnings if w.code in codes]
    if present:
        _fail("present: " + "; ".join(f"{w.code} ({w.message})" for w in present))


@prop("payloads_valid")
def _payloads_valid(ctx: Ctx, on: bool) -> None:
    if not on:
        return
    for service, operation, payload in _payloads(ctx.rec):
        shape = _MODELS[service].operation_model(operation).input_shape
        report = _validator.validate(msgspec.to_builtins(payload), shape)
        if report.has_errors():
            _fail(f"{service} {operation}: {report.generate_report()}")


@prop("payloads_consistent")
def _payloads_consistent(ctx: Ctx, on: bool) -> None:
    """The payloads deploy the plan that is described: type, counts, bounds, AZ layout, timeouts."""
    if not on:
        return
    rec, c = ctx.rec, ctx.rec.capacity
    if rec.hosting.mode != "real_time":
        _MODE_CONSISTENT[rec.hosting.mode](ctx)
        return
    problems = []
    variants = rec.hosting.aws.create_endpoint_config.ProductionVariants
    if len(variants) != 1:
        problems.append(f"{len(variants)} production variants")
    for v in variants:
        if v.InstanceType != rec.instance.instance_type:
            problems.append(f"CreateEndpointConfig InstanceType {v.InstanceType} != {rec.instance.instance_type}")
        if not c.min_instances <= v.InitialInstanceCount <= c.max_instances:
            problems.append(
                f"InitialInstanceCount {v.InitialInstanceCount} outside [{c.min_instances}, {c.max_instances}]"
            )
        wanted = min(3600, math.ceil(rec.hosting.startup_s))
        if v.ContainerStartupHealthCheckTimeoutInSeconds < wanted:
            problems.append(
                f"ContainerStartupHealthCheckTimeoutInSeconds {v.ContainerStartupHealthCheckTimeoutInSeconds} < "
                f"warm-up {rec.hosting.startup_s} s"
            )
    target = rec.scaling.aws.register_scalable_target
    if (target.MinCapacity, target.MaxCapacity) != (c.min_instances, c.max_instances):
        problems.append(
            f"RegisterScalableTarget {target.MinCapacity}..{target.MaxCapacity} != {c.min_instances}..{c.max_instances}"
        )
    if not c.min_instances <= c.instances <= c.max_instances:
        problems.append(f"instances {c.instances} outside [{c.min_instances}, {c.max_instances}]")
    if sum(c.per_az) != c.instances or len(c.per_az) != rec.availability.az_count:
        problems.append(f"per_az {c.per_az} does not spread {c.instances} over {rec.availability.az_count} AZs")
    endpoint = ctx.profile.name
    if endpoint is not None and target.ResourceId != f"endpoint/{endpoint}/variant/AllTraffic":
        problems.append(f"ResourceId {target.ResourceId} does not name endpoint {endpoint}")
    for a in rec.scaling.aws.scheduled_actions:
        if a.ScalableTargetAction.MinCapacity > a.ScalableTargetAction.MaxCapacity:
            problems.append(f"{a.ScheduledActionName}: MinCapacity > MaxCapacity")
    if problems:
        _fail("; ".join(problems))


def _serverless_consistent(ctx: Ctx) -> None:
    """One serverless variant (no type, count or AZ split); provisioned concurrency exactly when cold starts are
    not acceptable, scaled over DesiredProvisionedConcurrency up to MaxConcurrency."""
    rec, problems = ctx.rec, []
    if rec.instance is not None or rec.capacity is not None:
        problems.append("serverless with an instance or a capacity")
    (variant,) = rec.hosting.aws.create_endpoint_config.ProductionVariants
    config = variant.ServerlessConfig
    if config is None or variant.InstanceType is not None or variant.InitialInstanceCount is not None:
        _fail(f"not a serverless variant: {variant}")
    if (config.ProvisionedConcurrency is None) != ctx.profile.sla.cold_start_ok:
        problems.append(
            f"ProvisionedConcurrency {config.ProvisionedConcurrency} with cold_start_ok {ctx.profile.sla.cold_start_ok}"
        )
    if rec.scaling is None:
        if config.ProvisionedConcurrency is not None:
            problems.append("provisioned concurrency without its scaling")
    else:
        target = rec.scaling.aws.register_scalable_target
        if target.ScalableDimension != "sagemaker:variant:DesiredProvisionedConcurrency":
            problems.append(f"scales {target.ScalableDimension}")
        if (target.MinCapacity, target.MaxCapacity) != (config.ProvisionedConcurrency, config.MaxConcurrency):
            problems.append(f"RegisterScalableTarget {target.MinCapacity}..{target.MaxCapacity}")
        if any("InvocationsPerInstance" in str(msgspec.to_builtins(p)) for p in rec.scaling.aws.scaling_policies):
            problems.append("an invocations-per-instance policy on a serverless endpoint")
    if problems:
        _fail("; ".join(problems))


def _asynchronous_consistent(ctx: Ctx) -> None:
    """AsyncInferenceConfig on the chosen type; MinCapacity 0 with the HasBacklogWithoutCapacity step policy;
    target tracking on the backlog per instance as a customised metric."""
    rec, c, problems = ctx.rec, ctx.rec.capacity, []
    config = rec.hosting.aws.create_endpoint_config
    if config.AsyncInferenceConfig is None:
        problems.append("no AsyncInferenceConfig")
    if config.ProductionVariants[0].InstanceType != rec.instance.instance_type:
        problems.append("variant type differs from instance.instance_type")
    aws = rec.scaling.aws
    target = aws.register_scalable_target
    if (target.MinCapacity, target.MaxCapacity) != (0, c.max_instances) or c.min_instances != 0:
        problems.append(f"RegisterScalableTarget {target.MinCapacity}..{target.MaxCapacity}, min {c.min_instances}")
    backlog = [a for a in aws.alarms if a.MetricName == "HasBacklogWithoutCapacity"]
    names = {p.PolicyName for p in aws.scaling_policies if p.PolicyType == "StepScaling"}
    if len(backlog) != 1 or backlog[0].AlarmActions != [f"{{policy_arn:{n}}}" for n in names]:
        problems.append(f"HasBacklogWithoutCapacity alarms {backlog} for step policies {names}")
    tracked = [
        p.TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification
        for p in aws.scaling_policies
        if p.TargetTrackingScalingPolicyConfiguration is not None
    ]
    if [m.MetricName if m else None for m in tracked] != ["ApproximateBacklogSizePerInstance"]:
        problems.append(f"target tracking on {tracked}")
    if problems:
        _fail("; ".join(problems))


def _batch_consistent(ctx: Ctx) -> None:
    """A transform job on a type botocore allows for transform jobs, the planned count, within the payload
    bounds; no endpoint and no scaling."""
    rec, problems = ctx.rec, []
    job = rec.hosting.aws.create_transform_job
    if job is None or rec.hosting.aws.create_endpoint_config is not None or rec.scaling is not None:
        _fail("batch transform needs a transform job and nothing else")
    resources = job.TransformResources
    if resources.InstanceType not in TRANSFORM_TYPES or resources.InstanceType != rec.instance.instance_type:
        problems.append(f"TransformResources.InstanceType {resources.InstanceType}")
    if resources.InstanceCount != rec.capacity.instances:
        problems.append(f"InstanceCount {resources.InstanceCount} != {rec.capacity.instances}")
    if job.MaxConcurrentTransforms * job.MaxPayloadInMB > 100 or job.MaxPayloadInMB > 100:
        problems.append(f"MaxConcurrentTransforms {job.MaxConcurrentTransforms} x MaxPayloadInMB {job.MaxPayloadInMB}")
    if problems:
        _fail("; ".join(problems))


def _components_consistent(ctx: Ctx) -> None:
    """A variant without a model on the chosen type, managed instance scaling over the planned instances; the
    component on that endpoint and variant, its copies within the scalable target's bounds and scaled on
    invocations per copy; every AZ's instances hold its share of the copies (balanced, at most one apart)."""
    rec, c, problems = ctx.rec, ctx.rec.capacity, []
    (variant,) = rec.hosting.aws.create_endpoint_config.ProductionVariants
    component = rec.hosting.aws.create_inference_component
    managed = variant.ManagedInstanceScaling
    if component is None or managed is None or variant.ModelName is not None:
        _fail(f"not an inference-component endpoint: {variant}, {component}")
    if variant.InstanceType != rec.instance.instance_type or managed.Status != "ENABLED":
        problems.append(f"variant {variant.InstanceType}, managed scaling {managed.Status}")
    if (managed.MinInstanceCount, variant.InitialInstanceCount, managed.MaxInstanceCount) != (
        c.min_instances,
        c.instances,
        c.max_instances,
    ):
        problems.append(f"instances {managed} / {variant.InitialInstanceCount} differ from the capacity {c}")
    if (component.EndpointName, component.VariantName) != (ctx.profile.name or "my-endpoint", variant.VariantName):
        problems.append(f"component on {component.EndpointName}/{component.VariantName}")
    target, policies = rec.scaling.aws.register_scalable_target, rec.scaling.aws.scaling_policies
    if (target.ResourceId, target.ScalableDimension) != (
        f"inference-component/{component.InferenceComponentName}",
        "sagemaker:inference-component:DesiredCopyCount",
    ):
        problems.append(f"scales {target.ResourceId} {target.ScalableDimension}")
    metrics = [p.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification for p in policies]
    if [m.PredefinedMetricType if m else None for m in metrics] != ["SageMakerInferenceComponentInvocationsPerCopy"]:
        problems.append(f"policies on {metrics}")
    needs, k = component.Specification.ComputeResourceRequirements, rec.availability.az_count
    fit = min(
        int(rec.instance.vcpus // needs.NumberOfCpuCoresRequired),
        int(rec.instance.memory_gib * 1024 // needs.MinMemoryRequiredInMb),
    )
    for label, copies, instances in (
        ("min", target.MinCapacity, c.min_instances),
        ("peak", component.RuntimeConfig.CopyCount, c.instances),
        ("max", target.MaxCapacity, c.max_instances),
    ):
        per_az = [copies // k + (1 if i < copies % k else 0) for i in range(k)]
        if instances < sum(-(-n // fit) for n in per_az):
            problems.append(f"{label}: {instances} instances cannot hold {per_az} copies per AZ at {fit} each")
    if not target.MinCapacity <= component.RuntimeConfig.CopyCount <= target.MaxCapacity:
        problems.append(f"CopyCount {component.RuntimeConfig.CopyCount} outside {target.MinCapacity}..")
    if problems:
        _fail("; ".join(problems))


_MODE_CONSISTENT: dict[str, Callable[[Ctx], None]] = {
    "inference_components": _components_consistent,
    "serverless": _serverless_consistent,
    "asynchronous": _asynchronous_consistent,
    "batch_transform": _batch_consistent,
}


# ------------------------------------------------------------------------------------------- hosting


@prop("hosting_mode")
def _hosting_mode(ctx: Ctx, mode: str) -> None:
    if ctx.rec.hosting.mode != mode:
        _fail(f"hosting.mode {ctx.rec.hosting.mode!r} ({ctx.rec.hosting.rule_id}), wanted {mode!r}")


@prop("hosting_rejected_for")
def _hosting_rejected_for(ctx: Ctx, wanted: dict[str, str]) -> None:
    reasons = {r.mode: r.reason for r in ctx.rec.hosting.rejected}
    for mode, phrase in wanted.items():
        if mode not in reasons:
            _fail(f"{mode} is not in hosting.rejected ({sorted(reasons)})")
        if phrase not in reasons[mode]:
            _fail(f"hosting.rejected {mode}: {reasons[mode]!r} lacks {phrase!r}")


@prop("answer_fields")
def _answer_fields(ctx: Ctx, wanted: dict[str, Any]) -> None:
    for path, value in wanted.items():
        got = _lookup(ctx.data, path)
        if got != value:
            _fail(f"{path} is {got!r}, wanted {value!r}")


@prop("must_not_contain")
def _must_not_contain(ctx: Ctx, paths: list[str]) -> None:
    present = {p: v for p in paths if (v := _lookup(ctx.data, p)) not in (None, [], {}, "")}
    if present:
        _fail(f"present: {present}")


# `rejected` is checked by the runner itself: the case must be refused, and nothing else is expected.
REJECTED_KEYS = {"code", "field", "message_includes", "message_excludes"}
KNOWN = {*PROPERTIES, "rejected"}

BASELINE: list[tuple[str, Any]] = [
    ("payloads_valid", True),
    ("payloads_consistent", True),
    ("cost_order", True),
    ("utilization_at_peak_lte", 1.0),
    ("scale_out_cooldown_gte_startup", True),
]


def _applies(name: str, rec: Recommendation) -> bool:
    """The fleet baselines hold where there is a fleet: utilisation where there are instances, cooldowns where
    instances scale out."""
    if name == "utilization_at_peak_lte":
        return rec.capacity is not None
    if name == "scale_out_cooldown_gte_startup":
        return rec.hosting.mode in ("real_time", "asynchronous", "inference_components")
    return True


# ------------------------------------------------------------------------------------------- the tests


def _check_rejected(case: Case, ruleset: CompiledRuleset, spec: dict[str, Any]) -> list[str]:
    try:
        rec = evaluate(msgspec.convert(case.profile, WorkloadProfile), ruleset)
    except ProfileRejected as refusal:
        out = []
        if refusal.code != spec["code"]:
            out.append(f"code {refusal.code!r}, wanted {spec['code']!r} ({refusal.message})")
        if "field" in spec and refusal.field != spec["field"]:
            out.append(f"field {refusal.field!r}, wanted {spec['field']!r}")
        lacks = [s for s in spec.get("message_includes", []) if s not in refusal.message]
        says = [s for s in spec.get("message_excludes", []) if s in refusal.message]
        if lacks or says:
            out.append(f"message lacks {lacks} and says {says}: {refusal.message}")
        return [f"property 'rejected': {o}" for o in out]
    return [
        f"property 'rejected': answered instead of refusing ({spec['code']}): "
        f"{rec.hosting.mode}, {rec.capacity.instances if rec.capacity else 0} instances"
    ]


def _check_answer(case: Case, ruleset: CompiledRuleset) -> list[str]:
    profile = msgspec.convert(case.profile, WorkloadProfile)
    try:
        rec = evaluate(profile, ruleset)
    except ProfileRejected as refusal:
        return [f"refused ({refusal.code}, field {refusal.field}): {refusal.message}"]
    ctx = Ctx(rec, msgspec.to_builtins(rec), profile, ruleset)
    checks = [(name, arg, "") for name, arg in case.expect]
    checks += [(name, arg, " (baseline)") for name, arg in BASELINE if _applies(name, rec)]
    # queues and jobs absorb an AZ loss as delay; real-time fleets and shared instances must carry the peak
    if rec.availability.survives_az_loss and rec.hosting.mode in ("real_time", "inference_components"):
        checks.append(
            (
                "az_loss_utilization_lte",
                rec.availability.degraded_utilization,
                " (baseline: the plan survives an AZ loss)",
            )
        )
    failures = []
    for name, arg, note in checks:
        if name not in PROPERTIES:
            failures.append(f"property '{name}': unknown property")
            continue
        try:
            PROPERTIES[name](ctx, arg)
        except PropertyFailed as failed:
            failures.append(f"property '{name}'{note} {arg!r}: {failed}")
    return failures


def _params() -> list[Any]:
    return [
        pytest.param(case, id=case.id, marks=[pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else [])
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_case(case: Case, ruleset: CompiledRuleset) -> None:
    spec = next((arg for name, arg in case.expect if name == "rejected"), None)
    failures = _check_rejected(case, ruleset, spec) if spec is not None else _check_answer(case, ruleset)
    if failures:
        pytest.fail(f"case {case.id!r} ({case.why}):\n  " + "\n  ".join(failures), pytrace=False)


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= MIN_CASES, f"{len(CASES)} cases in {CASES_DIR}"


def test_every_property_is_known() -> None:
    unknown = [f"{case.id}: {name}" for case in CASES for name, _ in case.expect if name not in KNOWN]
    assert not unknown, f"properties the runner does not know: {unknown}; known: {sorted(KNOWN)}"


def test_cases_are_well_formed() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), f"duplicate case names: {sorted({i for i in ids if ids.count(i) > 1})}"
    for case in CASES:
        assert case.why.strip() and "\n" not in case.why.strip(), f"{case.id}: `why` must be one line"
        assert case.expect, f"{case.id}: no properties"
        assert case.xfail is None or (isinstance(case.xfail, str) and case.xfail.strip()), (
            f"{case.id}: xfail needs a reason"
        )
        names = [name for name, _ in case.expect]
        if "rejected" in names:
            assert names == ["rejected"], f"{case.id}: a refused case expects nothing but `rejected`"
            spec = case.expect[0][1]
            assert isinstance(spec, dict) and "code" in spec and set(spec) <= REJECTED_KEYS, f"{case.id}: {spec}"
        msgspec.convert(case.profile, WorkloadProfile)  # the profile is valid as POSTed


def test_a_misspelt_property_fails_its_case(ruleset: CompiledRuleset) -> None:
    """A typo in a case is reported as such, not silently skipped."""
    case = next(c for c in CASES if not c.xfail and all(name != "rejected" for name, _ in c.expect))
    typo = Case(case.file, case.name, case.why, case.profile, [("famly_in", ["c"])], None)
    assert "property 'famly_in': unknown property" in _check_answer(typo, ruleset)


def test_the_readme_documents_every_property() -> None:
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    undocumented = sorted(name for name in KNOWN if f"`{name}`" not in readme)
    assert not undocumented, f"tests/advice/README.md does not describe {undocumented}"
