"""GET /v1/decisions/{id}/cloudformation: an audited decision's answer as a CloudFormation template."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from service.api.decisions import AuditReadController, DecisionId, decision_uuid
from service.api.openapi_docs import ProblemDetails, error_responses
from service.api.problems import Problem
from service.services.audit import AuditReader
from service.services.export import ExportNotPossible, as_yaml, export_decision
from service.services.replay import DecisionNotFound

__all__ = ["ExportController"]

# YAML text. Not application/yaml (RFC 9512): client generators (openapi-python-client) read text/* as text and
# refuse application/yaml.
YAML = "text/yaml; charset=utf-8"

_NOT_EXPORTABLE = ResponseSpec(
    data_container=ProblemDetails,
    description="The decision exists but its stored answer lacks what a template needs (`decision-not-exportable`, "
    "saying which part): replay it for a current answer.",
    media_type="application/problem+json",
    generate_examples=False,
)


class ExportController(AuditReadController):
    @get(
        "/{decision_id:str}/cloudformation",
        operation_id="getDecisionCloudFormation",
        summary="An audited decision as a CloudFormation template",
        description="The stored answer translated into a CloudFormation template (YAML): the model, endpoint "
        "configuration, endpoint with its DeploymentConfig, inference component, scalable target with its scheduled "
        "actions, scaling policies and alarms whose actions `!Ref` the policies; parameters for the image, model data, "
        "execution role, subnets, KMS key and S3 output path; the decision id, ruleset and engine version in "
        "`Metadata.Advisor`. For batch transform, which CloudFormation has no resource for, the YAML holds a `Note` "
        "saying so and the `CreateTransformJob` request.",
        media_type=YAML,
        responses={**error_responses(400, 401, 403, 404, 422, 429, 503), 409: _NOT_EXPORTABLE},
    )
    async def cloudformation(self, reader: NamedDependency[AuditReader], decision_id: DecisionId) -> Response[str]:
        parsed = decision_uuid(decision_id)
        try:
            result = await export_decision(reader, parsed)
        except DecisionNotFound as exc:
            raise Problem(404, "decision-not-found", "Unknown decision", str(exc)) from exc
        except ExportNotPossible as exc:
            raise Problem(409, "decision-not-exportable", "The decision cannot be exported", exc.reason) from exc
        return Response(as_yaml(result), media_type=YAML)
