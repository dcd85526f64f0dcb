"""Response bodies of the read endpoints (the recommendation itself is in service.contract)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from service.contract import Recommendation, WorkloadProfile
from service.rulebook.loader import REQUIRED_TABLES

__all__ = [
    "Activation",
    "ActivationList",
    "ActivationResponse",
    "DecisionPage",
    "DecisionRecord",
    "DecisionSummary",
    "Health",
    "ImpactRequest",
    "RecommendationResponse",
    "RulesetDetail",
    "RulesetList",
    "RulesetSummary",
]


class RecommendationResponse(Recommendation, kw_only=True):
    """The answer to POST /v1/recommendations: the recommendation, with its audit identity."""

    decision_id: uuid.UUID
    created_at: datetime


EngineVersion = Annotated[
    str | None,
    msgspec.Meta(
        description="The advisor release whose engine made the decision; null: recorded before engine versions "
        "were kept (releases before 0.2.0).",
        examples=["0.2.0"],
    ),
]


ClientRequestId = Annotated[
    str | None,
    msgspec.Meta(
        description="The X-Request-ID the client sent, if it was well-formed ([A-Za-z0-9._:-], at most 128); null: "
        "none sent, or recorded before client ids were kept apart (earlier releases stored a client's id as "
        "request_id).",
        examples=["client-req-42"],
    ),
]


class DecisionRecord(msgspec.Struct, kw_only=True, frozen=True):
    """An audited decision: what was asked, what was answered, by which ruleset and engine, for whom."""

    decision_id: uuid.UUID
    created_at: datetime
    ruleset_version: str
    ruleset_sha256: str
    engine_version: EngineVersion
    caller: str
    request_id: Annotated[
        str, msgspec.Meta(description="The service's own id of the request (its X-Request-ID response header).")
    ]
    client_request_id: ClientRequestId
    # Served as the exact JSON text that was stored (msgspec.Raw), declared by type for the schema.
    profile: WorkloadProfile
    recommendation: Recommendation


class DecisionSummary(msgspec.Struct, kw_only=True, frozen=True):
    decision_id: uuid.UUID
    created_at: datetime
    ruleset_version: str
    ruleset_sha256: str
    engine_version: EngineVersion
    caller: str
    family: str | None
    instance_type: str | None
    scaling_method: str | None
    instances: int | None


class DecisionPage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[DecisionSummary]
    next_cursor: str | None = msgspec.field(
        default=None,
    )


class RulesetSummary(msgspec.Struct, kw_only=True, frozen=True):
    version: str
    sha256: str
    description: str
    created_at: datetime
    active: bool


class RulesetList(msgspec.Struct, kw_only=True, frozen=True):
    items: list[RulesetSummary]


class RulesetDetail(RulesetSummary, kw_only=True, frozen=True):
    files: dict[str, str]


class Health(msgspec.Struct, kw_only=True, frozen=True):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


class ActivationResponse(msgspec.Struct, kw_only=True, frozen=True):
    version: str
    sha256: str
    previous_sha256: str | None
    changed: bool  # false when the files on disk were already the active ruleset
    warnings: list[str]  # lint warnings (errors refuse the ruleset)


class Activation(msgspec.Struct, kw_only=True, frozen=True):
    version: str
    sha256: str
    previous_sha256: str | None
    activated_at: datetime
    activated_by: str


class ActivationList(msgspec.Struct, kw_only=True, frozen=True):
    items: list[Activation]


# ruleset.yaml, catalog.yaml and a file for each table a ruleset must have (msgspec checks the count, the published
# schema, which the endpoint also checks, names the two files).
_CANDIDATE_FILES = msgspec.Meta(
    min_length=2 + len(REQUIRED_TABLES),
    max_length=64,
    description="File path (as under rules/) -> text. ruleset.yaml, catalog.yaml and at least the tables "
    f"{', '.join(REQUIRED_TABLES)}, each in a file of its own (tables/<name>.yaml).",
    extra_json_schema={"required": ["ruleset.yaml", "catalog.yaml"]},
)


class ImpactRequest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A candidate ruleset, as its files (the layout of rules/: ruleset.yaml, catalog.yaml, tables/*.yaml)."""

    files: Annotated[dict[str, Annotated[str, msgspec.Meta(max_length=1_000_000)]], _CANDIDATE_FILES]
    since: Annotated[datetime, msgspec.Meta(tz=True, description="Decisions made at or after this time.")] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100_000
    sample_size: Annotated[int, msgspec.Meta(ge=0, le=100)] = 20
