"""POST /v1/recommendations: decide, audit, answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.status_codes import HTTP_201_CREATED

from service.api.auth import DECIDE, require_scope, security_for
from service.api.context import caller_of, request_id_of, require_json
from service.api.decision_options import DECISION_OPTION_PARAMETERS, decision_options
from service.api.encoded import EncodedJSONResponse
from service.api.openapi_docs import WORKED_EXAMPLE, ProblemDetails, error_responses
from service.api.profile_body import read_profile
from service.api.schemas import RecommendationResponse
from service.decisions import DecisionService

__all__ = ["DECISIONS_STATE_KEY", "RecommendationController"]

DECISIONS_STATE_KEY = "decisions"  # the app state's DecisionService (service.app)

_IDEMPOTENCY_CONFLICT = ResponseSpec(
    data_container=ProblemDetails,
    description="The Idempotency-Key was already used by this caller with a different request.",
    media_type="application/problem+json",
    generate_examples=False,
)


# What the handler reads itself, documented as Litestar documented its ``data`` and parameters before.
_PROFILE_BODY = RequestBody(
    content={
        "application/json": OpenAPIMediaType(
            schema=Schema(
                all_of=[Reference(ref="#/components/schemas/WorkloadProfile")],
                examples=[WORKED_EXAMPLE],
                title="WorkloadProfile",
            )
        )
    },
    required=True,
)


@dataclass
class RecommendationOperation(Operation):
    """The operation as Litestar builds it, plus the body and the parameters the handler reads itself."""

    def __post_init__(self) -> None:
        self.request_body = _PROFILE_BODY
        self.parameters = [*(self.parameters or []), *DECISION_OPTION_PARAMETERS]


class RecommendationController(Controller):
    path = "/v1/recommendations"
    tags = ["recommendations"]
    opt = require_scope(DECIDE)
    security = security_for(DECIDE)

    @post(
        operation_id="createRecommendation",
        summary="Recommend infrastructure for a workload profile",
        description=(
            "Evaluates the profile under the active ruleset (or the stored ruleset pinned by "
            "`ruleset_version`) and answers only after the decision's audit record is committed. "
            "Every part of the answer names the rule that decided it and why."
        ),
        status_code=HTTP_201_CREATED,
        before_request=require_json,
        response_description="The recommendation, with the id of its audit record.",
        operation_class=RecommendationOperation,
        responses={**error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503), 409: _IDEMPOTENCY_CONFLICT},
    )
    async def create(
        self,
        request: Request[Any, Any, State],
    ) -> EncodedJSONResponse[RecommendationResponse]:
        profile, body = await read_profile(request)  # the body (see profile_body.py), then the options
        options = decision_options(request)  # ruleset_version and Idempotency-Key (see decision_options.py)
        decisions: DecisionService = request.app.state[DECISIONS_STATE_KEY]
        decided = await decisions.decide(
            profile,
            body,
            ruleset_version=options.ruleset_version,
            caller=caller_of(request),
            request_id=request_id_of(request),
            idempotency_key=options.idempotency_key,
        )
        return EncodedJSONResponse(
            decided.body,  # the exact bytes that were audited
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/v1/decisions/{decided.decision_id}"}
            | ({"Idempotent-Replayed": "true"} if decided.replayed else {}),
        )
