"""What-if counterfactuals of an LLM's weight precision: fp8 and int4 as options, never applied silently.

Each option says what the weights take at that precision, which accelerators of the catalog run it, and is
then planned by the same engine (type, fleet, cost) like any other counterfactual.
"""

from __future__ import annotations

import msgspec

from service.contract import WorkloadProfile
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.engine.llm_profile import GIB, WEIGHT_BYTES, LlmInputs

__all__ = ["OPTION_PRECISIONS", "precision_changes"]

OPTION_PRECISIONS = ("fp8", "int4")


def precision_changes(
    profile: WorkloadProfile, inputs: LlmInputs | None, ruleset: CompiledRuleset
) -> list[tuple[str, WorkloadProfile, str]]:
    """(change, the profile with it, what it means) for each lower precision than the profile's."""
    llm = profile.workload.llm
    if llm is None or inputs is None:
        return []
    out = []
    for precision in OPTION_PRECISIONS:
        if WEIGHT_BYTES[precision] >= WEIGHT_BYTES[llm.precision]:
            continue
        weights = inputs.arch.parameters * WEIGHT_BYTES[precision] / GIB
        runs = [a.name for a in ruleset.catalog.accelerators if precision in a.precisions]
        head = (
            f"precision {llm.precision} -> {precision}: weights {fmt(round(inputs.weights_gib, 1))} -> "
            f"{fmt(round(weights, 1))} GiB; runs on {', '.join(runs) or 'no accelerator of the catalog'}; a "
            "quantised checkpoint must be evaluated for quality before it serves"
        )
        changed = msgspec.structs.replace(
            profile,
            workload=msgspec.structs.replace(profile.workload, llm=msgspec.structs.replace(llm, precision=precision)),
        )
        out.append((f"precision={precision}", changed, head))
    return out
