"""What-if counterfactuals: the decision again with one input changed, by the same engine and ruleset.

Pure, like the rest of the engine. The counterfactuals, in this order:

1. ``az_count`` one fewer, then one more, for a multi-AZ plan, each within the 2-6 a profile allows. A single-AZ
   plan gets none: its availability rule plans one AZ whatever ``az_count`` says, so ``not_possible`` says so.
2. ``target_utilization`` 0.6, then 0.8, leaving out the one equal to the profile's own.
3. ``family``: each family the family table can answer with (in catalog order) other than the decision's, with
   catalog types; its cheapest fitting type by expected monthly cost.
4. ``generation``: the decision's family on its newest generation that holds the model (the highest
   ``CatalogInstance.generation``), its cheapest type by expected monthly cost; ``not_possible`` when the
   decision's type is already of that generation.
5. ``hosting``: the cheapest hosting mode other than the decision's that could serve the profile
   (``mode_cost.best_other_mode``); ``not_possible`` when none could.

Every figure is the expected monthly cost in the plan's own hosting mode (``mode_cost``).

Each changed profile goes through ``decide`` with the other tables deciding as usual (a changed input may make
another rule fire, and the note says which); the figures are ``cost_estimate``'s, as in a recommendation. A
counterfactual the engine refuses (``ProfileRejected``: the model fits no type of that family, no rule matches)
is not priced: it is left out of ``what_if`` and listed in ``not_possible`` with the refusal's code and message.

Notes say what the counterfactual's plan occupies where it differs from the decision's (``whatif_fleet``): a fleet
of its own, or, for inference components always, the copies, the shared instances they occupy (the entry's
``instances``) and the model's reserved share, each side named by its mode where the mode changes. They name what
the counterfactual's plan needs that the decision's does not: a throughput basis other than the decision's (the
profile's rate assumed on a type it was not measured on is not known there), other rules, warnings from the
advisories and monitoring tables and the cost model that appear. The engine's arithmetic warnings
(``az_loss_overload``, ``near_idle_fleet`` ...) come with a full evaluation and are not repeated here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import msgspec

from service.contract import RulesetRef, Warning, WhatIf, WhatIfReport, WorkloadProfile
from service.contract.whatif import WhatIfNotPossible
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.engine.core import Decision, ProfileRejected, decide
from service.engine.cost import cost_estimate, priced
from service.engine.evaluate import DEFAULT_ENDPOINT_NAME
from service.engine.inference_components import CopyPlan, plan_copies
from service.engine.mode_cost import best_other_mode, mode_cost
from service.engine.monitoring import advisories, monitoring
from service.engine.multi_region import region_factor
from service.engine.whatif_fleet import fleet_note, same_copies
from service.engine.whatif_llm import precision_changes
from service.rulebook.hosting_models import HostingLimits
from service.rulebook.models import CatalogInstance

__all__ = ["MAX_AZ_COUNT", "MIN_AZ_COUNT", "UTILIZATIONS", "what_if", "what_if_report"]

MIN_AZ_COUNT, MAX_AZ_COUNT = 2, 6  # WorkloadProfile.az_count's bounds
UTILIZATIONS = (0.6, 0.8)
_RULE_TABLES = ("family", "sizing", "scaling", "availability")


@dataclass(frozen=True, slots=True)
class _Plan:
    """A decision with what the what-if figures and notes need from it."""

    decision: Decision
    usd_per_month_expected: float
    warnings: tuple[Warning, ...]
    copies: CopyPlan | None  # an inference component's copies; None in the other modes

    @property
    def instances(self) -> int:
        """At the peak, in the plan's mode (for inference components: the instances its copies occupy)."""
        return self.copies.instances if self.copies is not None else self.decision.instances


@dataclass
class _Report:
    base: _Plan
    entries: list[WhatIf]
    refused: list[WhatIfNotPossible]

    def add(self, change: str, plan: _Plan, head: str, *notes: str) -> None:
        delta = round(plan.usd_per_month_expected - self.base.usd_per_month_expected, 2)
        serverless = plan.decision.hosting_mode == "serverless"
        self.entries.append(
            WhatIf(
                change=change,
                hosting_mode=plan.decision.hosting_mode,  # type: ignore[arg-type]
                instance_type=None if serverless else plan.decision.instance.type,
                instances=None if serverless else plan.instances,
                usd_per_month_expected=plan.usd_per_month_expected,
                delta_usd_per_month=delta + 0.0,  # no -0.0
                note="; ".join([head, *notes, *_differences(self.base, plan)]),
            )
        )

    def not_possible(self, change: str, reason: str, code: str | None = None) -> None:
        self.refused.append(WhatIfNotPossible(change=change, reason=reason, code=code))

    def attempt(
        self, change: str, profile: WorkloadProfile, ruleset: CompiledRuleset, *, family: str | None = None
    ) -> _Plan | None:
        """The plan for ``change``, or None with the engine's refusal listed as not possible."""
        try:
            return _plan(profile, ruleset, family=family)
        except ProfileRejected as exc:
            self.not_possible(change, exc.message, exc.code)
            return None


def what_if(profile: WorkloadProfile, ruleset: CompiledRuleset) -> list[WhatIf]:
    """The priced counterfactuals of ``profile`` under ``ruleset`` (see the module's docstring)."""
    return what_if_report(profile, ruleset).what_if


def what_if_report(profile: WorkloadProfile, ruleset: CompiledRuleset) -> WhatIfReport:
    """The decision's own figures, its priced counterfactuals and those left out, with why.

    Raises:
        ProfileRejected: the engine refuses the profile itself (as ``evaluate`` would).
    """
    base = _plan(profile, ruleset)
    profile = base.decision.profile or profile  # in request units: each counterfactual derives them alike
    report = _Report(base, [], [])
    if base.decision.hosting_mode == "serverless":
        for change in ("az_count", "target_utilization", "family", "generation"):
            report.not_possible(change, "a serverless endpoint has no instances: AWS places its capacity.")
    else:
        _az_counts(profile, ruleset, report)
        _utilizations(profile, ruleset, report)
        if profile.workload.llm is None:  # an LLM's types all compete already: a family says nothing more
            _families(profile, ruleset, report)
            _newest_generation(profile, ruleset, report)
        for change, changed, head in precision_changes(profile, base.decision.llm_inputs, ruleset):
            plan = report.attempt(change, changed, ruleset)
            if plan is not None:
                report.add(change, plan, head)
    _other_mode(profile, ruleset, report)
    decision = base.decision
    serverless = decision.hosting_mode == "serverless"
    return WhatIfReport(
        decision_id=None,
        ruleset=RulesetRef(version=ruleset.version, sha256=ruleset.sha256),
        hosting_mode=decision.hosting_mode,  # type: ignore[arg-type]
        instance_type=None if serverless else decision.instance.type,
        instances=None if serverless else base.instances,
        usd_per_month_expected=base.usd_per_month_expected,
        what_if=report.entries,
        not_possible=report.refused,
    )


def _plan(
    profile: WorkloadProfile, ruleset: CompiledRuleset, *, family: str | None = None, instance: str | None = None
) -> _Plan:
    decision = decide(profile, ruleset, explain=False, family_override=family, instance_override=instance)
    profile = decision.profile or profile  # an LLM's profile with its request rates derived
    warnings: list[Warning] = []
    inst = decision.instance
    endpoint = profile.name or DEFAULT_ENDPOINT_NAME
    monitoring(ruleset, decision.facts, endpoint, profile.sla.latency_ms, inst, decision.per_instance_rps, [], warnings)
    advisories(ruleset, decision.facts, [], warnings)
    cost = cost_estimate(profile, decision, ruleset.catalog.as_of, ruleset.catalog.region, warnings)
    hosting = ruleset.source.tables.get("hosting")
    if hosting is not None and decision.hosting_mode != "real_time":
        in_mode = mode_cost(decision.hosting_mode, profile, decision, hosting.limits, cost)
        cost = in_mode if not isinstance(in_mode, str) else cost
    limits = hosting.limits if hosting is not None else None
    regions = region_factor(profile, ruleset, decision.hosting_mode)  # the second Region runs its share of the plan
    expected = round(priced(cost.usd_per_month_expected) * regions, 2)
    return _Plan(decision, expected, tuple(warnings), _copies(profile, decision, limits))


def _copies(profile: WorkloadProfile, decision: Decision, limits: HostingLimits | None) -> CopyPlan | None:
    """An inference component's copies and the shared instances they occupy; None in the other modes."""
    if decision.hosting_mode == "inference_components" and limits is not None and limits.inference_components:
        return plan_copies(profile, decision, limits.inference_components)
    return None


def _other_mode(profile: WorkloadProfile, ruleset: CompiledRuleset, report: _Report) -> None:
    """The cheapest other hosting mode that could serve, priced on the same fleet (or serverless)."""
    hosting = ruleset.source.tables.get("hosting")
    if hosting is None:
        return
    decision = report.base.decision
    real_time = cost_estimate(profile, decision, ruleset.catalog.as_of, ruleset.catalog.region, [])
    best = best_other_mode(profile, decision, hosting.limits, real_time)
    if best is None:
        report.not_possible("hosting", f"no hosting mode other than {decision.hosting_mode} could serve this profile.")
        return
    mode, cost = best
    facts = dict(decision.facts, **{"decision.hosting_mode": mode})
    in_mode = dataclasses.replace(decision, facts=facts)
    expected = round(priced(cost.usd_per_month_expected) * region_factor(profile, ruleset, mode), 2)
    other = _Plan(in_mode, expected, report.base.warnings, _copies(profile, in_mode, hosting.limits))
    rule = decision.hosting_rule
    head = (
        f"hosting {decision.hosting_mode} -> {mode}, the cheapest other mode that could serve "
        f"(hosting rule '{rule.id if rule else 'none'}' chose {decision.hosting_mode}); {_first_clause(cost.basis)}"
    )
    report.add(f"hosting={mode}", other, head)


def _az_counts(profile: WorkloadProfile, ruleset: CompiledRuleset, report: _Report) -> None:
    decision = report.base.decision
    if not decision.multi_az:
        rule = decision.availability_rule
        report.not_possible(
            "az_count",
            f"the plan is single-AZ: availability rule '{rule.id}' plans one AZ for availability "
            f"{fmt(profile.sla.availability)}, whatever az_count says, so one more or one fewer AZ does not apply.",
        )
        return
    for count in (decision.az_count - 1, decision.az_count + 1):
        change = f"az_count={count}"
        if not MIN_AZ_COUNT <= count <= MAX_AZ_COUNT:
            report.not_possible(change, f"az_count must be {MIN_AZ_COUNT} to {MAX_AZ_COUNT}.")
            continue
        plan = report.attempt(change, msgspec.structs.replace(profile, az_count=count), ruleset)
        if plan is None:
            continue
        head = f"az_count {decision.az_count} -> {count}"
        planned = plan.decision
        if planned.az_count != count:
            head += f" asked; availability rule '{planned.availability_rule.id}' plans {planned.az_count}"
        elif planned.availability_rule.then.survives_az_loss:
            head += f", sized so that the {count - 1} AZ(s) left after losing one carry the peak"
        report.add(change, plan, head)


def _utilizations(profile: WorkloadProfile, ruleset: CompiledRuleset, report: _Report) -> None:
    for utilization in UTILIZATIONS:
        if utilization == profile.target_utilization:
            continue
        change = f"target_utilization={fmt(utilization)}"
        plan = report.attempt(change, msgspec.structs.replace(profile, target_utilization=utilization), ruleset)
        if plan is None:
            continue
        head = f"target_utilization {fmt(profile.target_utilization)} -> {fmt(utilization)}"
        if plan.decision.utilization != utilization:
            rule = plan.decision.sizing_rule
            head += f", capped at {fmt(plan.decision.utilization)} by sizing rule '{rule.id}'"
        report.add(change, plan, head, *_same_fleet(report.base, plan))


def _families(profile: WorkloadProfile, ruleset: CompiledRuleset, report: _Report) -> None:
    decision = report.base.decision
    table = ruleset.tables["family"]
    allowed = {rule.then.family for rule in table.rules}
    for family in ruleset.by_family:  # catalog order
        if family == decision.family or family not in allowed:
            continue
        change = f"family={family}"
        engine_pick = report.attempt(change, profile, ruleset, family=family)
        if engine_pick is None:  # refused for the family, so for each of its types
            continue
        fitting = _fitting(profile, ruleset, ruleset.by_family[family], family)
        plan = min(fitting, key=_cheapest, default=engine_pick)
        head = (
            f"family {decision.family} -> {family} (family rule '{decision.family_rule.id}' chose "
            f"{decision.family}); {plan.decision.instance.type} is the cheapest {family} type that holds the model"
        )
        notes = []
        if engine_pick.decision.instance.type != plan.decision.instance.type:
            notes.append(
                f"sizing rule '{engine_pick.decision.sizing_rule.id}' would rank "
                f"{engine_pick.decision.instance.type} first ({fmt(engine_pick.usd_per_month_expected)} USD/month)"
            )
        report.add(change, plan, head, *notes)


def _newest_generation(profile: WorkloadProfile, ruleset: CompiledRuleset, report: _Report) -> None:
    decision = report.base.decision
    family = decision.family
    types = ruleset.by_family.get(family, ())
    for generation in sorted({inst.generation for inst in types}, reverse=True):
        same = tuple(inst for inst in types if inst.generation == generation)
        fitting = _fitting(profile, ruleset, same, None)
        if not fitting:
            continue
        name = _generation_name(same[0])
        if generation == decision.instance.generation:
            report.not_possible(
                f"generation={name}",
                f"{decision.instance.type} is already of the newest generation of family {family} that holds "
                f"the model ({name}).",
            )
            return
        plan = min(fitting, key=_cheapest)
        head = (
            f"generation {_generation_name(decision.instance)} -> {name}: {plan.decision.instance.type}, the "
            f"cheapest {name} type that holds the model"
        )
        report.add(f"generation={name}", plan, head)
        return


def _same_fleet(base: _Plan, plan: _Plan) -> list[str]:
    """Why a utilisation that changed leaves the fleet (or an inference component's copies) as it was."""
    b, p = base.decision, plan.decision
    if base.copies is not None and plan.copies is not None:
        return same_copies(base.copies, plan.copies, p)
    if base.copies is not None or plan.copies is not None:  # the mode changed: the note says what the plan occupies
        return []
    if p.instances != b.instances or p.instance.type != b.instance.type:
        return []
    planned = p.per_instance_rps * p.utilization
    if p.target.per_instance_rps < planned * (1 - 1e-9):
        return [
            f"the same fleet: the target per instance is {fmt(p.target.per_instance_rps)} rps (below "
            f"{fmt(planned)} rps at this utilisation) so that the AZs left after losing one carry the load"
        ]
    return [f"the same fleet: {p.instances} instances either way (whole instances, the AZ spread and the minimum)"]


def _fitting(
    profile: WorkloadProfile, ruleset: CompiledRuleset, types: tuple[CatalogInstance, ...], family: str | None
) -> list[_Plan]:
    """Plans on each of ``types`` that the engine accepts (the model fits, a rate applies)."""
    plans = []
    for inst in types:
        try:
            plans.append(_plan(profile, ruleset, family=family, instance=inst.type))
        except ProfileRejected:
            continue
    return plans


def _cheapest(plan: _Plan) -> tuple[float, float, tuple[int, str], str]:
    inst = plan.decision.instance
    negated = (-inst.generation[0], inst.generation[1])  # on a tie, the newer generation
    return (plan.usd_per_month_expected, inst.usd_per_hour, negated, inst.type)


def _generation_name(inst: CatalogInstance) -> str:
    """ml.c7i.large -> c7i."""
    return inst.type.split(".")[1]


def _differences(base: _Plan, plan: _Plan) -> list[str]:
    """What the counterfactual's plan rests on that the decision's does not, in a fixed order."""
    b, p = base.decision, plan.decision
    notes: list[str] = []
    fleet = fleet_note(b, base.copies, p, plan.copies)
    if fleet is not None:
        notes.append(fleet)
    if b.hosting_rule is not None and p.hosting_rule is not None and b.hosting_rule.id != p.hosting_rule.id:
        notes.append(
            f"hosting rule '{p.hosting_rule.id}' ({p.hosting_mode}) instead of '{b.hosting_rule.id}' ({b.hosting_mode})"
        )
    for table in _RULE_TABLES:
        before, after = getattr(b, f"{table}_rule").id, getattr(p, f"{table}_rule").id
        if before != after:
            notes.append(f"{table} rule '{after}' instead of '{before}'")
    basis = _basis(p)
    if basis != _basis(b) or p.instance.type != b.instance.type:
        notes.append(basis)
    known = {(w.code, w.rule_id) for w in base.warnings}
    notes.extend(f"warning {w.code}: {w.message}" for w in plan.warnings if (w.code, w.rule_id) not in known)
    return notes


def _basis(decision: Decision) -> str:
    chosen = decision.selection.chosen
    inst, measured = chosen.instance, chosen.measured_on
    if decision.llm_plan is not None:  # an LLM's basis is streams: the last step of its plan says how many and why
        return f"{decision.llm_plan.steps[-1]} on {inst.type} ({decision.llm_plan.basis})"
    if chosen.source == "load_test" and measured is not None:
        return f"throughput basis: {fmt(chosen.rps)} rps load-tested on {inst.type} ({measured.label})"
    if chosen.source == "extrapolated" and measured is not None:
        return (
            f"throughput basis: {fmt(chosen.rps)} rps extrapolated from {fmt(measured.rps)} rps measured on "
            f"{measured.instance.type} (vCPU ratio {fmt(chosen.factor)}), not measured on {inst.type}"
        )
    return (
        f"throughput basis: traffic.per_instance_rps {fmt(chosen.rps)} assumed on {inst.type}, where it was not "
        "measured: the rate there is not known, so the count and cost are only as good as that assumption; "
        f"load-test {inst.type} to rely on them"
    )


def _first_clause(text: str) -> str:
    """``text`` up to its first ``;`` outside parentheses (a cost basis's first clause, whole)."""
    depth = 0
    for at, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == ";" and depth <= 0:
            return text[:at]
    return text
