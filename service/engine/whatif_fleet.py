"""What a what-if plan occupies, in its note's words: a fleet of its own, or one model's copies on shared instances.

A plan in the inference-components mode is its copies at the peak, the shared instances they occupy (the entry's
``instances``) and the model's reserved share of one instance per copy (what its cost is made of); any other plan
with instances is its fleet, and a serverless plan has none. Where a counterfactual changes the mode, each side of
the note names its mode. Pure, like the rest of the engine.
"""

from __future__ import annotations

from service.engine.capacity import fmt, spread
from service.engine.core import Decision
from service.engine.inference_components import CopyPlan

__all__ = ["fleet_note", "occupied", "same_copies"]


def occupied(decision: Decision, copies: CopyPlan | None) -> str:
    """What the plan occupies: its copies and the shared instances they need (the share to 4 significant digits,
    so that copies x share x price gives its cost), its own fleet, or no instances."""
    inst = decision.instance.type
    if decision.hosting_mode == "serverless":
        return "no instances of its own (AWS places the capacity)"
    if copies is not None:
        k = len(copies.per_az)
        where, per_az = " in 1 AZ", ""
        if k > 1:
            where, per_az = f" ({_sum(copies.per_az_copies)} over {k} AZs)", f" ({_sum(copies.per_az)})"
        return (
            f"{copies.copies} {'copy' if copies.copies == 1 else 'copies'}{where} on {copies.instances} shared {inst} "
            f"{'instance' if copies.instances == 1 else 'instances'}{per_az}, {copies.share:.4g} of one "
            "reserved per copy"
        )
    n = decision.instances
    where = f"{_sum(spread(n, decision.az_count))} over {decision.az_count} AZs" if decision.multi_az else "1 AZ"
    return f"{n} x {inst} ({where})"


def fleet_note(base: Decision, base_copies: CopyPlan | None, plan: Decision, copies: CopyPlan | None) -> str | None:
    """``before -> after`` where the plan occupies other instances than the decision's, or None.

    Where either side is an inference component the note always says what the plan occupies: each side named by its
    mode where the mode changes, ``... either way`` where nothing changed. Fleets of their own are compared by count
    and type, as they always were.
    """
    before, after = occupied(base, base_copies), occupied(plan, copies)
    if base_copies is None and copies is None:
        changed = plan.instances != base.instances or plan.instance.type != base.instance.type
        return f"{base.instances} x {base.instance.type} -> {after}" if changed else None
    if plan.hosting_mode != base.hosting_mode:
        return f"{base.hosting_mode}: {before} -> {plan.hosting_mode}: {after}"
    return f"{before} -> {after}" if before != after else f"{after} either way"


def same_copies(base: CopyPlan, plan: CopyPlan, decision: Decision) -> list[str]:
    """Why a utilisation that changed leaves the copies as they were (``decision``: the plan's)."""
    if (plan.copies, plan.instances) != (base.copies, base.instances):
        return []
    if plan.copies == plan.min_copies:
        return [f"the same copies: the minimum ({plan.copies}: whole copies, AZ spread, floor) carries the peak"]
    planned = plan.copy_rps * decision.utilization
    if plan.target.per_instance_rps < planned * (1 - 1e-9):
        return [
            f"the same copies: the target per copy is {fmt(plan.target.per_instance_rps)} rps (below {fmt(planned)} "
            "rps at this utilisation) so that the AZs left after losing one carry the load"
        ]
    return ["the same copies: whole copies either way"]


def _sum(counts: list[int]) -> str:
    return " + ".join(map(str, counts))
