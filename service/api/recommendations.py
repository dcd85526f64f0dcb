"""POST /v1/recommendations: decide, audit, answer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_201_CREATED

from service.api.auth import DECIDE, require_scope, security_for
from service.api.body_schema import RecommendationOperation
from service.api.context import caller_of, client_request_id_of, request_id_of, require_json
from service.api.json_body import read_json
from service.api.openapi_docs import ProblemDetails, error_responses
from service.api.schemas import RecommendationResponse
from service.contract import WorkloadProfile
from service.rulebook.models import RULESET_VERSION_PATTERN
from service.services.decisions import DecisionService

__all__ = [
    "DECISIONS_STATE_KEY",
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENCY_KEY_PATTERN",
    "RULESET_VERSION_MAX_LENGTH",
    "RecommendationController",
]

DECISIONS_STATE_KEY = "decisions"  # the app state's DecisionService (service.app)

RULESET_VERSION_MAX_LENGTH = 64
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"  # 1-255 printable ASCII, no space at either end

RulesetVersion = Annotated[
    str | None,
    QueryParameter(
        max_length=RULESET_VERSION_MAX_LENGTH,
        pattern=RULESET_VERSION_PATTERN,
        description="Evaluate with this stored ruleset version instead of the active one.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_KEY_HEADER,
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Makes retries safe: a repeat with the same key and the same request (body and "
        "`ruleset_version`) answers the original decision, byte for byte, without storing a new one; the same key "
        "with a different request is a 409. Keys are scoped by caller and remembered for a configured period "
        "(default 24 h). 1-255 printable ASCII characters.",
    ),
]

_IDEMPOTENCY_CONFLICT = ResponseSpec(
    data_container=ProblemDetails,
    description="The Idempotency-Key was already used by this caller with a different request.",
    media_type="application/problem+json",
    generate_examples=False,
)
_CREATED = ResponseSpec(
    data_container=RecommendationResponse,
    description="The recommendation, with the id of its audit record (`Location: /v1/decisions/{decision_id}`).",
    media_type=MediaType.JSON,
    generate_examples=False,
)


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
        operation_class=RecommendationOperation,
        responses={
            HTTP_201_CREATED: _CREATED,
            **error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503),
            409: _IDEMPOTENCY_CONFLICT,
        },
    )
    async def create(
        self,
        request: Request[Any, Any, State],
        ruleset_version: RulesetVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ASGIResponse:
        profile, body = await read_json(request, WorkloadProfile)
        decisions: DecisionService = request.app.state[DECISIONS_STATE_KEY]
        decided = await decisions.decide(
            profile,
            body,
            ruleset_version=ruleset_version,
            caller=caller_of(request),
            request_id=request_id_of(request),
            client_request_id=client_request_id_of(request),
            idempotency_key=idempotency_key,
        )
        headers = {"Location": f"/v1/decisions/{decided.decision_id}"}
        if decided.replayed:
            headers["Idempotent-Replayed"] = "true"
        # The exact bytes that were audited, sent as they are: the answer is encoded once, and no response object
        # is built around it (documented by _CREATED).
        return ASGIResponse(body=decided.body, status_code=HTTP_201_CREATED, media_type=MediaType.JSON, headers=headers)
