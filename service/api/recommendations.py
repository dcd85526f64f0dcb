"""POST /v1/recommendations: decide, audit, answer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from service.api.context import caller_of, request_id_of, require_json
from service.api.openapi_docs import WORKED_EXAMPLE, error_responses
from service.api.schemas import RecommendationResponse
from service.contract import WorkloadProfile
from service.decisions import DecisionService

__all__ = ["RecommendationController"]


class RecommendationController(Controller):
    path = "/v1/recommendations"
    tags = ["recommendations"]

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
        responses=error_responses(400, 404, 413, 415, 422),
    )
    async def create(
        self,
        request: Request[Any, Any, State],
        data: Annotated[
            WorkloadProfile,
            Body(
                title="WorkloadProfile",
                examples=[Example(summary="The study guide's worked example", value=WORKED_EXAMPLE)],
            ),
        ],
        decisions: NamedDependency[DecisionService],
        ruleset_version: Annotated[
            str | None,
            QueryParameter(
                max_length=64,
                description="Evaluate with this stored ruleset version instead of the active one.",
            ),
        ] = None,
    ) -> Response[RecommendationResponse]:
        decided = await decisions.decide(
            data,
            await request.body(),
            ruleset_version=ruleset_version,
            caller=caller_of(request),
            request_id=request_id_of(request),
        )
        return Response(
            content=decided.body,  # type: ignore[arg-type]  # pre-encoded: the exact bytes that were audited
            status_code=HTTP_201_CREATED,
            media_type="application/json",
            headers={"Location": f"/v1/decisions/{decided.decision_id}"},
        )
