"""Which instance type: how the model fits it, and the per-instance rate its counts rest on.

A model fits the way it is served: with ``sharding: none`` one accelerator device holds it, with
``tensor_parallel`` the devices of ONE instance share it (the degree divides the device count, in
NeuronCores on Inferentia), and host memory must hold the weights too. It is never split across
instances. A rate belongs to the type it was measured on: it is used as measured on that type,
carried to a CPU type of the same generation by the vCPU ratio where the sizing rule allows it,
or (with nothing better) assumed, with a warning naming the type to load-test. Accelerator rates
never carry across chips.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from service.contract import WorkloadProfile
from service.contract.profile import LoadTest
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.engine.errors import ProfileRejected
from service.engine.fit import Fit, does_not_fit, fit_model, model_sharding
from service.rulebook.models import CatalogInstance, SizingOutcome

__all__ = [
    "Candidate",
    "Fit",
    "Measurement",
    "Selection",
    "fit_model",
    "measurements",
    "model_sharding",
    "select_instance",
]

MAX_ALTERNATIVES = 6
MAX_LARGER_UNTESTED = 2  # without a load test the next larger types differ only in size: two say enough


@dataclass(frozen=True, slots=True)
class Measurement:
    """A rate measured on one type: a load test, or traffic.per_instance_rps with tested_instance_type."""

    instance: CatalogInstance
    rps: float
    p99_ms: float | None
    at_max_invocations: bool
    label: str  # where it came from, for messages
    concurrency: int | None = None  # an LLM test's max_concurrency: streams in flight within the SLA


@dataclass(frozen=True, slots=True)
class Candidate:
    instance: CatalogInstance
    fit: Fit
    rps: float
    source: str  # load_test | extrapolated | assumed
    factor: float
    measured_on: Measurement | None
    fleet: int = 0  # instances the plan needs at the peak on this type's rate (measured candidates)

    @property
    def usd_per_million(self) -> float:
        return self.instance.usd_per_hour / (self.rps * 3600) * 1_000_000

    @property
    def fleet_usd_per_hour(self) -> float:
        return self.fleet * self.instance.usd_per_hour


@dataclass(frozen=True, slots=True)
class Selection:
    chosen: Candidate
    index: int  # the chosen type's position in the family's cheapest-first list
    alternatives: list[tuple[str, str]]  # (instance type, why not)
    basis_steps: list[str]


def measurements(profile: WorkloadProfile, ruleset: CompiledRuleset) -> list[Measurement]:
    """Every measured rate in the profile, each on a catalog type (422 with the closest names otherwise)."""
    found: list[Measurement] = []
    traffic = profile.traffic
    if traffic.tested_instance_type is not None:
        if traffic.per_instance_rps is None:
            raise ProfileRejected(
                "tested-type-without-rate",
                "traffic.tested_instance_type names where traffic.per_instance_rps was measured, but no "
                "per_instance_rps was given.",
                "traffic.per_instance_rps",
            )
        inst = _catalog_type(ruleset, traffic.tested_instance_type, "traffic.tested_instance_type")
        found.append(Measurement(inst, traffic.per_instance_rps, None, False, "traffic.per_instance_rps"))
    for i, test in enumerate(profile.load_tests or ()):
        inst = _catalog_type(ruleset, test.instance_type, f"load_tests[{i}].instance_type")
        found.append(_from_load_test(inst, test, i))
    if traffic.per_instance_rps is None and not found:
        raise ProfileRejected(
            "throughput-required",
            "give traffic.per_instance_rps (what one instance sustains within the SLA) or load_tests.",
            "traffic.per_instance_rps",
        )
    return found


def _from_load_test(inst: CatalogInstance, test: LoadTest, i: int) -> Measurement:
    at_max = test.latency_measure == "at_max_invocations"
    return Measurement(inst, test.rps, test.p99_latency_ms, at_max, f"load_tests[{i}]", test.max_concurrency)


def _catalog_type(ruleset: CompiledRuleset, name: str, field: str) -> CatalogInstance:
    inst = ruleset.instance_types.get(name)
    if inst is None:
        close = difflib.get_close_matches(name, list(ruleset.instance_types), n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ProfileRejected(
            "unknown-instance-type",
            f"{field} '{name}' is not in the catalog of ruleset {ruleset.version}{hint}.",
            field,
        )
    return inst


def select_instance(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    family: str,
    sizing: SizingOutcome,
    utilization: float,
    fleet_for: Callable[[float], int],
    only_type: str | None = None,
    mode: str = "real_time",
) -> Selection:
    """The type to recommend, with its rate basis and why the others were not chosen.

    Untested, the choice stays in ``family``. Load-tested types compete by the cost of the fleet
    the plan needs on their rate (``fleet_for(rate)`` instances at the peak), then by cost per
    million requests: a type measured within the SLA in another family of the same kind (an
    accelerator for a model held in accelerator memory, a CPU type otherwise) is a candidate too,
    since the measurement outweighs the family table's default. ``only_type`` restricts the
    choice to one type (what-if counterfactuals).
    """
    family_types = ruleset.by_family.get(family, ())
    if not family_types:
        raise ProfileRejected(
            "family-not-in-catalog",
            f"the catalog of ruleset {ruleset.version} has no instance type of family '{family}'.",
        )
    tests = measurements(profile, ruleset)
    usable, failing = _split_by_sla(tests, profile.sla.latency_ms)
    rejected: list[tuple[str, str]] = [(m.instance.type, why) for m, why in failing]
    if not usable:  # every fitting type would be assumed: walk them in preference order, stop when enough
        return _select_untested(profile, ruleset, family, sizing, utilization, (only_type, mode), rejected, tests)
    candidates: list[Candidate] = []
    failed = {t for t, _ in rejected}
    for inst in _pool(family_types, usable, sizing, family):
        if (only_type is not None and inst.type != only_type) or inst.type in failed:
            continue
        fit = fit_model(inst, profile, sizing, mode)
        if not fit.ok:
            rejected.append((inst.type, fit.why_not))
            continue
        candidates.append(_basis(inst, fit, usable, sizing, profile.traffic.per_instance_rps))
    if not candidates:
        raise does_not_fit(profile, ruleset, family, sizing, rejected)
    measured = [replace(c, fleet=fleet_for(c.rps)) for c in candidates if c.source != "assumed"]
    if measured:
        ranked = sorted(measured, key=lambda c: _measured_rank(c, sizing, utilization))
        others = [c for c in candidates if c.source == "assumed" and c.instance.family == family]
    else:
        ranked = _rank_assumed(candidates, ruleset, sizing, profile, tests, family)
        others = []
    chosen = ranked[0]
    alternatives = _alternatives(chosen, ranked[1:], others, rejected, utilization)
    index = ruleset.by_family[chosen.instance.family].index(chosen.instance)
    steps = _basis_steps(chosen, utilization)
    if chosen.instance.family != family:
        steps.insert(
            0,
            f"{chosen.instance.type} (family {chosen.instance.family}) was load-tested within the SLA "
            f"and its fleet costs least, ahead of family {family}, the family table's default",
        )
    return Selection(chosen, index, alternatives, steps)


def _pool(
    family_types: tuple[CatalogInstance, ...], usable: list[Measurement], sizing: SizingOutcome, family: str
) -> list[CatalogInstance]:
    """The family's types, then measured types of other families of the same kind."""
    accelerated = sizing.fit_on == "accelerator_memory"
    extra: list[CatalogInstance] = []
    for m in usable:
        inst = m.instance
        if inst.family != family and (inst.accelerator is not None) == accelerated and inst not in extra:
            extra.append(inst)
    return [*family_types, *extra]


def _select_untested(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    family: str,
    sizing: SizingOutcome,
    utilization: float,
    restrict: tuple[str | None, str],
    rejected: list[tuple[str, str]],
    tests: list[Measurement],
) -> Selection:
    """No load test applies: the first fitting type in the rule's order of preference, rate assumed.

    ``restrict`` is the one type allowed (or None) and the hosting mode the type must be offered for.
    """
    only_type, mode = restrict
    order = _preference_order(ruleset, family, sizing)
    rate = profile.traffic.per_instance_rps or 0.0
    fitting: list[Candidate] = []
    for inst in order:
        if only_type is not None and inst.type != only_type:
            continue
        fit = fit_model(inst, profile, sizing, mode)
        if not fit.ok:
            rejected.append((inst.type, fit.why_not))
        elif len(fitting) <= MAX_LARGER_UNTESTED:
            fitting.append(Candidate(inst, fit, rate, "assumed", 1.0, None))
        else:
            break
    if not fitting:
        raise does_not_fit(profile, ruleset, family, sizing, rejected)
    if profile.traffic.per_instance_rps is None:
        raise _throughput_unknown(tests, family)
    chosen = fitting[0]
    alternatives = _alternatives(chosen, fitting[1:], [], rejected, utilization)
    return Selection(
        chosen, ruleset.by_family[family].index(chosen.instance), alternatives, _basis_steps(chosen, utilization)
    )


def _throughput_unknown(tests: list[Measurement], family: str) -> ProfileRejected:
    tested = ", ".join(sorted({m.instance.type for m in tests})) or "none"
    return ProfileRejected(
        "throughput-unknown",
        f"no load test applies to family '{family}' (tested: {tested}; failing the SLA, not fitting the "
        "model, or another chip), and no traffic.per_instance_rps was given to assume.",
        "load_tests",
    )


def _split_by_sla(tests: list[Measurement], sla_ms: float) -> tuple[list[Measurement], list[tuple[Measurement, str]]]:
    usable: list[Measurement] = []
    failing: list[tuple[Measurement, str]] = []
    for m in tests:
        if m.p99_ms is not None and m.p99_ms > sla_ms:
            what = "latency at its maximum rate (not a p99)" if m.at_max_invocations else "p99"
            failing.append(
                (
                    m,
                    f"fails the SLA: {m.label} measured {what} {fmt(m.p99_ms)} ms at "
                    f"{fmt(m.rps)} rps > {fmt(sla_ms)} ms",
                )
            )
        else:
            usable.append(m)
    return usable, failing


def _basis(
    inst: CatalogInstance, fit: Fit, tests: list[Measurement], sizing: SizingOutcome, assumed_rps: float | None
) -> Candidate:
    same = [m for m in tests if m.instance.type == inst.type]
    if same:
        best = max(same, key=lambda m: m.rps)
        return Candidate(inst, fit, best.rps, "load_test", 1.0, best)
    if sizing.throughput_extrapolation == "vcpu_ratio_same_generation" and inst.accelerator is None:
        peers = [m for m in tests if m.instance.accelerator is None and m.instance.generation == inst.generation]
        if peers:
            near = min(peers, key=lambda m: (abs(math.log(inst.vcpus / m.instance.vcpus)), -m.rps))
            factor = inst.vcpus / near.instance.vcpus
            return Candidate(inst, fit, near.rps * factor, "extrapolated", factor, near)
    return Candidate(inst, fit, assumed_rps or 0.0, "assumed", 1.0, None)


def _measured_rank(c: Candidate, sizing: SizingOutcome, utilization: float) -> tuple[float, ...]:
    # Cost per million requests at the planned utilisation; on a tie the newest generation, then the
    # smallest extrapolation, then the smaller type. Latency first ranks by the measured latency.
    fleet = round(c.fleet_usd_per_hour, 9)
    cost = round(c.usd_per_million / utilization, 9)
    extrapolation = abs(math.log(c.factor))
    latency = c.measured_on.p99_ms if c.measured_on and c.measured_on.p99_ms is not None else math.inf
    lead = (latency,) if sizing.prefer == "newest" else ()
    return (*lead, fleet, cost, -c.instance.generation[0], extrapolation, c.instance.vcpus)


def _rank_assumed(
    candidates: list[Candidate],
    ruleset: CompiledRuleset,
    sizing: SizingOutcome,
    profile: WorkloadProfile,
    tests: list[Measurement],
    family: str,
) -> list[Candidate]:
    """The family's untested candidates in the sizing rule's order of preference (as ``_select_untested`` walks)."""
    if profile.traffic.per_instance_rps is None:
        raise _throughput_unknown(tests, family)
    position = {inst.type: i for i, inst in enumerate(_preference_order(ruleset, family, sizing))}
    return sorted((c for c in candidates if c.instance.type in position), key=lambda c: position[c.instance.type])


def _preference_order(ruleset: CompiledRuleset, family: str, sizing: SizingOutcome) -> tuple[CatalogInstance, ...]:
    """Cheapest first, the newest generation on equal price; or newest generation first (``prefer: newest``)."""
    return ruleset.newest_first[family] if sizing.prefer == "newest" else ruleset.by_family[family]


def _alternatives(
    chosen: Candidate,
    ranked: list[Candidate],
    assumed: list[Candidate],
    rejected: list[tuple[str, str]],
    utilization: float,
) -> list[tuple[str, str]]:
    # Load tests that failed the SLA, then the two largest types that could not hold the model, then
    # the fitting types ranked after the chosen one.
    out: list[tuple[str, str]] = [(t, why) for t, why in rejected if why.startswith("fails the SLA")]
    out += [(t, why) for t, why in rejected if not why.startswith("fails the SLA")][-2:]
    room = max(0, MAX_ALTERNATIVES - len(out))  # reasons are worded only for the alternatives shown
    out += [(other.instance.type, _why_not(chosen, other, utilization)) for other in ranked[:room]]
    out += [(other.instance.type, "not load-tested: no rate to compare; load-test it to compare") for other in assumed]
    return out[:MAX_ALTERNATIVES]


def _why_not(chosen: Candidate, other: Candidate, utilization: float) -> str:
    a, b = chosen.instance, other.instance
    if chosen.source == "assumed":
        if b.usd_per_hour == a.usd_per_hour and b.generation < a.generation:
            return f"older generation at the same price ({fmt(b.usd_per_hour)} USD/h)"
        if b.vcpus > a.vcpus or b.memory_gib > a.memory_gib:
            return (
                f"larger than needed ({b.vcpus} vCPUs, {fmt(b.memory_gib)} GiB, {fmt(b.usd_per_hour)} USD/h): more, "
                "smaller instances keep more capacity when one fails"
            )
        if b.usd_per_hour > a.usd_per_hour:
            return (
                f"costlier at the same size ({fmt(b.usd_per_hour)} vs {fmt(a.usd_per_hour)} USD/h), and no load "
                "test shows it faster"
            )
        return f"not preferred by the sizing rule ({fmt(b.usd_per_hour)} USD/h, generation {b.generation[0]})"
    if other.fleet_usd_per_hour > chosen.fleet_usd_per_hour * (1 + 1e-9):
        return (
            f"costlier plan: {other.fleet} x {b.type} = {fmt(other.fleet_usd_per_hour)} USD/h vs {chosen.fleet} x "
            f"{a.type} = {fmt(chosen.fleet_usd_per_hour)} USD/h at the peak ({other.source}, {fmt(other.rps)} rps)"
        )
    mine, theirs = chosen.usd_per_million / utilization, other.usd_per_million / utilization
    if theirs > mine * (1 + 1e-9):
        return (
            f"costlier per request: {fmt(theirs)} vs {fmt(mine)} USD per million requests at the planned "
            f"utilisation ({other.source}, {fmt(other.rps)} rps)"
        )
    if b.generation < a.generation:
        return "older generation at the same cost per request"
    if other.factor != chosen.factor:
        return f"same cost, but extrapolated further ({fmt(other.factor)} x) from the tested type"
    return "same cost; ranked after by latency or size"


def _basis_steps(c: Candidate, utilization: float) -> list[str]:
    m = c.measured_on
    if c.source == "load_test" and m is not None:
        head = f"throughput basis: {fmt(c.rps)} rps per {c.instance.type}, load-tested ({m.label})"
    elif c.source == "extrapolated" and m is not None:
        head = (
            f"throughput basis: {fmt(m.rps)} rps measured on {m.instance.type} ({m.instance.vcpus} vCPUs) x "
            f"vCPU ratio {c.instance.vcpus}/{m.instance.vcpus} = {fmt(c.factor)} -> {fmt(c.rps)} rps per "
            f"{c.instance.type} (extrapolated within generation {c.instance.generation[0]})"
        )
    else:
        head = f"throughput basis: {fmt(c.rps)} rps per instance, assumed to hold on {c.instance.type} (not tested)"
    cost = f"cost per million requests at {fmt(utilization)} utilisation: {fmt(c.usd_per_million / utilization)} USD"
    return [head, cost]
