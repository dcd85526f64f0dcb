"""Typed models of the rule files under ``rules/``.

Every model forbids unknown keys, so a misspelt key fails loudly with its file and line. The
JSON Schema published for editors (``rules/schema/*.json``) is generated from these models.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import ConfigDict, Field, model_validator

from service.rulebook.catalog import Catalog, CatalogInstance
from service.rulebook.deployment_models import DeploymentOutcome
from service.rulebook.fields import FIELDS, fields_visible_to
from service.rulebook.hosting_models import HostingLimits, HostingOutcome
from service.rulebook.region_models import MultiRegionLimits
from service.rulebook.strict import Strict

__all__ = [
    "RULESET_VERSION_PATTERN",
    "AdvisoriesTable",
    "AdvisoryOutcome",
    "AlarmSpec",
    "AnyTable",
    "AvailabilityOutcome",
    "AvailabilityTable",
    "Catalog",
    "CatalogInstance",
    "Condition",
    "DeploymentOutcome",
    "DeploymentTable",
    "FamilyOutcome",
    "FamilyTable",
    "HostingLimits",
    "HostingOutcome",
    "HostingTable",
    "MonitoringOutcome",
    "MonitoringTable",
    "Ops",
    "Rule",
    "RulesetManifest",
    "ScalingOutcome",
    "ScalingTable",
    "SizingOutcome",
    "SizingTable",
    "StartupEstimate",
    "StepSpec",
]

Family = Literal["c", "m", "r", "g", "p", "inf"]
Scalar = bool | int | float | str


# ---------------------------------------------------------------- conditions


class Ops(Strict):
    """Operators on one field; several given together must all hold."""

    eq: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[Scalar] | None = Field(default=None, min_length=1)
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _not_empty(self) -> Ops:
        if all(v is None for v in (self.eq, self.in_, self.not_in, self.gt, self.gte, self.lt, self.lte)):
            raise ValueError("a condition needs at least one of eq, in, not_in, gt, gte, lt, lte")
        if self.gt is not None and self.gte is not None:
            raise ValueError("give gt or gte, not both")
        if self.lt is not None and self.lte is not None:
            raise ValueError("give lt or lte, not both")
        return self


# A bare value means equality, a list means one-of, a mapping gives operators.
Condition = Annotated[
    Scalar | list[Scalar] | Ops,
    Field(description="A value (equals), a list (one of) or operators {eq, in, not_in, gt, gte, lt, lte}."),
]

OutcomeT = TypeVar("OutcomeT", bound=Strict)

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class Rule(Strict, Generic[OutcomeT]):
    """One row of a decision table."""

    id: Annotated[str, Field(pattern=RULE_ID_PATTERN, description="Stable id, kebab-case; never reuse one.")]
    when: dict[str, Condition] = Field(
        default_factory=dict,
        description="Conditions on profile fields, all of which must hold. Empty: always.",
    )
    then: OutcomeT
    because: Annotated[str, Field(min_length=10, max_length=500, description="Why, shown to users.")]


# ---------------------------------------------------------------- outcomes


class FamilyOutcome(Strict):
    family: Family


class StartupEstimate(Strict):
    """Warm-up of a new instance when the profile gives no ``workload.startup_s``: base + per GiB of model."""

    base_s: float = Field(ge=0, le=3600, description="Provisioning and container start, seconds.")
    per_gib_s: float = Field(ge=0, le=600, description="Model download and load, seconds per GiB.")


class SizingOutcome(Strict):
    fit_on: Literal["memory", "accelerator_memory"] = Field(
        description="Which memory must hold the model: host memory, or the accelerators' memory."
    )
    memory_headroom: float = Field(
        default=1.2,
        ge=1.0,
        le=4.0,
        description="Model memory x this must fit: one device (sharding none), the devices of the "
        "tensor-parallel group, or host memory.",
    )
    host_memory_headroom: float = Field(
        default=1.0,
        ge=1.0,
        le=4.0,
        description="Accelerator types: host memory must hold the weights x this (they are loaded through it, "
        "beside the OS and the serving container).",
    )
    throughput_extrapolation: Literal["none", "vcpu_ratio_same_generation"] = Field(
        default="none",
        description="How a rate load-tested on one CPU type carries to another: not at all, or scaled by "
        "the vCPU ratio between types of the same generation. Accelerator rates never carry.",
    )
    prefer: Literal["cheapest", "newest"] = Field(
        default="cheapest",
        description="Among fitting types without a load test: the cheapest, or the newest generation.",
    )
    max_target_utilization: float | None = Field(
        default=None, ge=0.1, le=0.95, description="Caps the profile's target_utilization."
    )
    startup_estimate: StartupEstimate = Field(
        default_factory=lambda: StartupEstimate(base_s=300, per_gib_s=5),
        description="Warm-up estimate used when the profile gives no workload.startup_s.",
    )

    @model_validator(mode="after")
    def _no_accelerator_extrapolation(self) -> SizingOutcome:
        if self.fit_on == "accelerator_memory" and self.throughput_extrapolation != "none":
            raise ValueError("accelerator throughput never carries across chips: throughput_extrapolation 'none'")
        return self


class StepSpec(Strict):
    above: float = Field(ge=0, le=10, description="Fraction above the alarm threshold where this step starts.")
    add_percent: int = Field(ge=1, le=500, description="Capacity to add, percent of current.")


class ScalingOutcome(Strict):
    method: Literal["target_tracking", "step", "scheduled"]
    scale_out_cooldown_s: int = Field(default=300, ge=0, le=86_400)
    scale_in_cooldown_s: int = Field(default=300, ge=0, le=86_400)
    max_capacity_factor: float = Field(
        default=1.5,
        ge=1.0,
        le=10.0,
        description="MaxCapacity = instances x this, for load above the forecast.",
    )
    scale_out_steps: list[StepSpec] | None = Field(
        default=None, description="Step scaling only: steps by how far load is above the threshold."
    )
    scale_in_below: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Step scaling only: remove capacity when load per instance falls below this share of "
        "per_instance_rps.",
    )

    @model_validator(mode="after")
    def _steps_go_with_step(self) -> ScalingOutcome:
        if self.method == "step":
            if not self.scale_out_steps or self.scale_in_below is None:
                raise ValueError("method 'step' needs scale_out_steps and scale_in_below")
            starts = [s.above for s in self.scale_out_steps]
            if starts[0] != 0 or starts != sorted(set(starts)):
                raise ValueError("scale_out_steps must start at above: 0 and rise strictly")
        elif self.scale_out_steps is not None or self.scale_in_below is not None:
            raise ValueError("scale_out_steps and scale_in_below apply only to method 'step'")
        return self


class AvailabilityOutcome(Strict):
    multi_az: bool
    az_count: int = Field(ge=1, le=6, description="Default AZ count; a profile's az_count overrides it.")
    survives_az_loss: bool = Field(description="Size so that losing one AZ still carries the peak.")
    min_instances: int = Field(ge=1, le=1000)
    degraded_utilization: float = Field(
        default=1.0, ge=0.5, le=1.0, description="Share of per-instance capacity usable while an AZ is lost."
    )
    az_safe_up_to: Literal["max", "peak"] = Field(
        default="max",
        description="With survives_az_loss: the scaling target keeps every fleet size AZ-safe for loads up to "
        "MaxCapacity's (max), or only up to the stated peak (peak: fewer instances at the peak, no AZ-loss "
        "guarantee for load above the forecast).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AvailabilityOutcome:
        if self.multi_az and self.az_count < 2:
            raise ValueError("multi_az needs az_count >= 2")
        if not self.multi_az and (self.az_count != 1 or self.survives_az_loss):
            raise ValueError("without multi_az, az_count must be 1 and survives_az_loss false")
        return self


AlarmKind = Literal[
    "latency_p99",
    "latency_p99_early",
    "caller_latency_p99",
    "errors_5xx",
    "cpu_utilization",
    "gpu_utilization",
    "memory_utilization",
    "invocations_above_capacity",
]


class AlarmSpec(Strict):
    kind: AlarmKind
    threshold: float | None = Field(
        default=None,
        gt=0,
        description="latency_p99 and caller_latency_p99: share of the SLA (default 1.0); latency_p99_early: "
        "share of the SLA (default 0.8); errors_5xx: error rate (default 0.01); *_utilization: percent per core "
        "or GPU (default 80); invocations_above_capacity: share of the per-instance rate (default 0.9).",
    )


class MonitoringOutcome(Strict):
    alarms: list[AlarmSpec] = Field(default_factory=list)
    tools: list[Literal["cloudwatch", "x-ray", "cloudtrail"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> MonitoringOutcome:
        if not self.alarms and not self.tools:
            raise ValueError("a monitoring outcome needs alarms or tools")
        return self


class AdvisoryOutcome(Strict):
    """A warning; the rule's ``because`` is the message shown with it."""

    warning: str = Field(pattern=r"^[a-z0-9_]{1,64}$", description="Warning code.")


# ---------------------------------------------------------------- tables


class _Table(Strict):
    description: str = Field(min_length=1)
    hit_policy: Literal["first", "collect"]

    @model_validator(mode="after")
    def _check_rules(self) -> Any:
        name: str = getattr(self, "table")  # noqa: B009 - defined by every subclass
        rules: list[Rule[Any]] = getattr(self, "rules")  # noqa: B009
        wanted = "collect" if name in ("monitoring", "advisories") else "first"
        if self.hit_policy != wanted:
            raise ValueError(f"table '{name}' needs hit_policy '{wanted}'")
        visible = fields_visible_to(name)  # type: ignore[arg-type]
        # Duplicate ids are checked by the loader, across tables and with the lines of both uses.
        for rule in rules:
            for field, cond in rule.when.items():
                _check_condition(name, rule.id, field, cond, visible)
        return self


def _check_condition(table: str, rule_id: str, field: str, cond: Any, visible: frozenset[str]) -> None:
    where = f"rule '{rule_id}': field '{field}'"
    spec = FIELDS.get(field)
    if spec is None:
        close = sorted(f for f in FIELDS if f.split(".")[-1] == field.split(".")[-1])
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"{where}: unknown field{hint}")
    if field not in visible:
        raise ValueError(f"{where}: is decided after table '{table}' runs")
    values: list[Any]
    if isinstance(cond, Ops):
        values = [v for v in (cond.eq, *(cond.in_ or ()), *(cond.not_in or ())) if v is not None]
        ranged = any(v is not None for v in (cond.gt, cond.gte, cond.lt, cond.lte))
    elif isinstance(cond, list):
        values, ranged = list(cond), False
    else:
        values, ranged = [cond], False
    if spec.values is not None:
        if ranged:
            raise ValueError(f"{where}: gt/gte/lt/lte apply to numbers, not to an enum")
        bad = [v for v in values if v not in spec.values or type(v) is not type(spec.values[0])]
        if bad:
            raise ValueError(f"{where}: {bad[0]!r} is not one of {list(spec.values)}")
    else:
        bad = [v for v in values if isinstance(v, bool | str)]
        if bad:
            raise ValueError(f"{where}: {bad[0]!r} is not a number")


class HostingTable(_Table):
    table: Literal["hosting"]
    limits: HostingLimits
    rules: list[Rule[HostingOutcome]] = Field(min_length=1)


class FamilyTable(_Table):
    table: Literal["family"]
    rules: list[Rule[FamilyOutcome]] = Field(min_length=1)


class SizingTable(_Table):
    table: Literal["sizing"]
    rules: list[Rule[SizingOutcome]] = Field(min_length=1)


class ScalingTable(_Table):
    table: Literal["scaling"]
    rules: list[Rule[ScalingOutcome]] = Field(min_length=1)


class AvailabilityTable(_Table):
    table: Literal["availability"]
    multi_region: MultiRegionLimits | None = Field(
        default=None, description="When one Region's commitment is below the objective, and the second Region's plan."
    )
    rules: list[Rule[AvailabilityOutcome]] = Field(min_length=1)


class DeploymentTable(_Table):
    table: Literal["deployment"]
    rules: list[Rule[DeploymentOutcome]] = Field(min_length=1)


class MonitoringTable(_Table):
    table: Literal["monitoring"]
    rules: list[Rule[MonitoringOutcome]] = Field(min_length=1)


class AdvisoriesTable(_Table):
    table: Literal["advisories"]
    rules: list[Rule[AdvisoryOutcome]] = Field(min_length=1)


AnyTable = Annotated[
    HostingTable
    | FamilyTable
    | SizingTable
    | ScalingTable
    | AvailabilityTable
    | DeploymentTable
    | MonitoringTable
    | AdvisoriesTable,
    Field(discriminator="table"),
]


# ---------------------------------------------------------------- ruleset manifest and catalog


# A ruleset version: also what the API accepts where a version is asked for (a 64-hex sha256 matches it too).
RULESET_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"


class RulesetManifest(Strict):
    """``rules/ruleset.yaml``."""

    version: str = Field(pattern=RULESET_VERSION_PATTERN, description="Ruleset version.")
    description: str = Field(min_length=1)
