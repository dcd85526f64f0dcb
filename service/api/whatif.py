"""GET /v1/decisions/{id}/what-if: counterfactuals of an audited decision, computed on demand."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from service.api.decisions import AuditReadController, DecisionId, decision_uuid
from service.api.openapi_docs import ProblemDetails, error_responses
from service.api.problems import Problem
from service.contract import WhatIfReport
from service.services.audit import AuditReader
from service.services.registry import RulesetRegistry
from service.services.whatif import DecisionNotFound, StoredDecisionUnusable, WhatIfRunner

__all__ = ["WhatIfController"]

_UNUSABLE = ResponseSpec(
    data_container=ProblemDetails,
    description="The decision exists but cannot be evaluated again: its stored profile is not valid for this "
    "release (`stored-profile-invalid`), its ruleset is not stored (`ruleset-not-stored`), or this engine refuses "
    "the profile (`stored-profile-refused`).",
    media_type="application/problem+json",
    generate_examples=False,
)


class WhatIfController(AuditReadController):
    # Like reading the decision: it reveals what the decision's profile would get otherwise, and writes nothing.

    @get(
        "/{decision_id:str}/what-if",
        operation_id="getDecisionWhatIf",
        summary="What-if counterfactuals of an audited decision",
        description="The decision's stored profile with one input changed at a time, evaluated by this release's "
        "engine under the ruleset that made the decision: one fewer and one more AZ (multi-AZ plans, within 2-6), "
        "target utilisation 0.6 and 0.8 (except the profile's own), the cheapest type that holds the model in each "
        "other family the family table can choose, and the decision's family on its newest generation. Each entry "
        "gives the instance type and count at the peak, the expected monthly cost and its difference from the "
        "decision's (negative: cheaper), and a note on what changed and what it rests on. Counterfactuals the "
        "engine refuses (e.g. the model fits no type of a family) are listed in `not_possible` with the reason. "
        "Computed on demand and not audited; `POST /v1/recommendations` does not compute them.",
        responses={**error_responses(400, 401, 403, 404, 422, 429, 503), 409: _UNUSABLE},
    )
    async def what_if(
        self,
        reader: NamedDependency[AuditReader],
        registry: NamedDependency[RulesetRegistry],
        decision_id: DecisionId,
    ) -> WhatIfReport:
        parsed = decision_uuid(decision_id)
        try:
            return await WhatIfRunner(reader, registry).report(parsed)
        except DecisionNotFound as exc:
            raise Problem(404, "decision-not-found", "Unknown decision", str(exc)) from exc
        except StoredDecisionUnusable as exc:
            raise Problem(409, exc.code, "The decision cannot be evaluated again", exc.message) from exc
