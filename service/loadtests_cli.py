"""``advisor load-tests import``: an Inference Recommender job's results as the profile's ``load_tests``.

The input is the JSON response of SageMaker's ``DescribeInferenceRecommendationsJob``, as
``aws sagemaker describe-inference-recommendations-job`` prints it (timestamps as strings; the
``NaN`` the AWS CLI prints for unavailable utilisation metrics is accepted). The fields read, and
what they mean in botocore's sagemaker service model:

* ``InferenceRecommendations[].Metrics.MaxInvocations`` is "the expected maximum number of requests
  per minute for the instance", so ``per_instance_rps = MaxInvocations / 60``.
* ``Metrics.ModelLatency`` is "the expected model latency at maximum invocation per minute" (ms). It
  is not a p99: the entry carries it as ``p99_latency_ms`` with ``latency_measure: at_max_invocations``
  and its ``source`` says so.
* ``ModelConfiguration.EnvironmentParameters`` (``Key``/``Value`` pairs) become ``environment``: the
  rate was measured with that container environment and holds only with it.
* A row whose ``EndpointConfiguration`` has no ``InstanceType`` but a ``ServerlessConfig`` is a
  serverless recommendation. It is no load test of an instance: it is set aside (``--serverless FILE``
  writes those rows verbatim) and counted on stderr.
* ``EndpointPerformances`` (Advanced jobs run against existing endpoints) are ignored. Their
  ``InferenceMetrics`` give MaxInvocations and ModelLatency for a whole endpoint, and ``EndpointInfo``
  holds only the endpoint's name: no instance type and no instance count, so no per-instance rate can
  be derived from them. They are counted on stderr. An Advanced job's ``InferenceRecommendations``
  (one per endpoint configuration it tested) are converted like a Default job's.
* ``InitialInstanceCount`` is not used: it is a recommendation for the endpoint, while MaxInvocations is
  documented per instance.

Several configurations of one instance type all become entries; ``source`` names the job and the
recommendation id, which tells them apart. Every entry is checked against ``LoadTest``; a profile holds
at most 50, and a job with more instance rows is refused rather than trimmed (``--instance-types``
keeps some types).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import click
import msgspec

from service.contract.profile import INSTANCE_TYPE_PATTERN, LoadTest

__all__ = [
    "MAX_LOAD_TESTS",
    "Conversion",
    "ImportRefused",
    "convert_job",
    "load_tests",
    "no_instances",
    "parse_response",
]

MAX_LOAD_TESTS = 50  # WorkloadProfile.load_tests holds at most this many entries
_SOURCE_MAX = 200  # LoadTest.source max_length
_RATE_NOTE = "MaxInvocations/60"
_LATENCY_NOTE = "; ModelLatency at max invocations, not a p99"


class ImportRefused(Exception):
    """The response cannot be turned into load tests; the message says why."""


class _EnvironmentParameter(msgspec.Struct, rename="pascal"):
    key: str
    value: str


class _Metrics(msgspec.Struct, rename="pascal"):
    max_invocations: int | None = None
    model_latency: int | None = None


class _EndpointConfiguration(msgspec.Struct, rename="pascal"):
    instance_type: str | None = None
    serverless_config: dict[str, Any] | None = None


class _ModelConfiguration(msgspec.Struct, rename="pascal"):
    environment_parameters: list[_EnvironmentParameter] | None = None


class _Recommendation(msgspec.Struct, rename="pascal"):
    endpoint_configuration: _EndpointConfiguration
    model_configuration: _ModelConfiguration
    recommendation_id: str | None = None
    metrics: _Metrics | None = None


class _Job(msgspec.Struct, rename="pascal"):
    job_name: str
    status: str
    inference_recommendations: list[_Recommendation]
    endpoint_performances: list[Any] | None = None


@dataclass(frozen=True)
class Conversion:
    """The result of converting one job."""

    job_name: str
    load_tests: list[dict[str, Any]]
    serverless: list[Any]  # the serverless rows, verbatim
    endpoint_performances: int  # ignored: no per-instance rate (see the module docstring)
    types_in_job: list[str]  # every instance type of the job, before --instance-types


def parse_response(data: bytes) -> Any:
    """The decoded JSON document (Python's parser: the AWS CLI prints NaN for unavailable metrics)."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportRefused(f"not JSON: {exc}") from exc


def _job(document: Any) -> _Job:
    what = "not a DescribeInferenceRecommendationsJob response"
    if not isinstance(document, dict) or not {"JobName", "Status"} <= document.keys():
        raise ImportRefused(f"{what} (expected a JSON object with JobName, Status and InferenceRecommendations)")
    status, failure = document["Status"], document.get("FailureReason")
    if status != "COMPLETED":
        reason = f": {failure}" if failure else ""
        raise ImportRefused(f"job {document['JobName']} is {status}, not COMPLETED{reason}")
    if "InferenceRecommendations" not in document:
        raise ImportRefused(f"{what}: no InferenceRecommendations")
    try:
        return msgspec.convert(document, _Job)
    except msgspec.ValidationError as exc:
        raise ImportRefused(f"{what}: {exc}") from exc


def _source(job: str, label: str, with_latency: bool) -> str:
    """Where the figures come from, within LoadTest.source's 200 characters."""
    note = _RATE_NOTE + (_LATENCY_NOTE if with_latency else "")
    recommendation = f"recommendation {label}" if label.startswith("#") else f"recommendation id {label}"
    candidates = [f"Inference Recommender job {job}, {recommendation}: {note}"]
    if label.startswith(f"{job}/"):  # AWS ids start with the job name: naming the job again is redundant
        candidates.append(f"Inference Recommender {recommendation}: {note}")
    candidates.append(f"IR job {job}, rec {label}: {note.replace(', not a p99', ' (not p99)')}")
    for text in candidates:
        if len(text) <= _SOURCE_MAX:
            return text
    raise ImportRefused(f"recommendation {label}: job name and recommendation id are too long to cite in `source`")


def _environment(label: str, row: _Recommendation) -> dict[str, str] | None:
    params = row.model_configuration.environment_parameters or []
    environment: dict[str, str] = {}
    for param in params:
        if param.key in environment and environment[param.key] != param.value:
            raise ImportRefused(f"recommendation {label}: EnvironmentParameters set {param.key} twice")
        environment[param.key] = param.value
    return environment or None


def _entry(job: str, label: str, row: _Recommendation) -> dict[str, Any]:
    """One LoadTest entry (as JSON-ready data), checked against the contract."""
    instance_type = row.endpoint_configuration.instance_type
    metrics = row.metrics or _Metrics()
    if metrics.max_invocations is None:
        raise ImportRefused(f"recommendation {label} ({instance_type}) has no Metrics.MaxInvocations")
    entry: dict[str, Any] = {"instance_type": instance_type, "per_instance_rps": metrics.max_invocations / 60}
    if metrics.model_latency is not None:
        entry["p99_latency_ms"] = metrics.model_latency
    entry["latency_measure"] = "at_max_invocations"
    environment = _environment(label, row)
    if environment is not None:
        entry["environment"] = environment
    entry["source"] = _source(job, label, metrics.model_latency is not None)
    try:
        msgspec.convert(entry, LoadTest)
    except msgspec.ValidationError as exc:
        raise ImportRefused(
            f"recommendation {label} ({instance_type}) is outside what a load test allows: {exc}"
        ) from exc
    return entry


def _too_many(job: str, rows: list[_Recommendation]) -> ImportRefused:
    counts: dict[str, int] = {}
    for row in rows:
        name = row.endpoint_configuration.instance_type or ""
        counts[name] = counts.get(name, 0) + 1
    listing = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))
    return ImportRefused(
        f"job {job} has {len(rows)} instance recommendations and a profile holds at most {MAX_LOAD_TESTS}: "
        f"keep some with --instance-types TYPE,... (the job has {listing})"
    )


def convert_job(document: Any, instance_types: frozenset[str] | None = None) -> Conversion:
    """Convert a decoded DescribeInferenceRecommendationsJob response; `instance_types` keeps only those types.

    `load_tests` may come back empty (a serverless-only job, or a filter matching nothing): the caller
    decides what to do with the serverless rows before refusing.
    """
    job = _job(document)
    raw_rows: list[Any] = document["InferenceRecommendations"]
    labelled: list[tuple[str, _Recommendation]] = []
    serverless: list[Any] = []
    seen: set[str] = set()
    for index, (row, raw) in enumerate(zip(job.inference_recommendations, raw_rows, strict=True)):
        label = row.recommendation_id or f"#{index + 1}"
        instance_type = row.endpoint_configuration.instance_type
        if instance_type is None:
            if row.endpoint_configuration.serverless_config is None:
                raise ImportRefused(f"recommendation {label} has neither an InstanceType nor a ServerlessConfig")
            serverless.append(raw)
            continue
        seen.add(instance_type)
        if instance_types is None or instance_type in instance_types:
            labelled.append((label, row))
    if len(labelled) > MAX_LOAD_TESTS:
        raise _too_many(job.job_name, [row for _, row in labelled])
    return Conversion(
        job_name=job.job_name,
        load_tests=[_entry(job.job_name, label, row) for label, row in labelled],
        serverless=serverless,
        endpoint_performances=len(job.endpoint_performances or []),
        types_in_job=sorted(seen),
    )


def no_instances(result: Conversion, instance_types: frozenset[str] | None) -> str:
    """Why `result` has no load tests."""
    kept = ""
    if instance_types is not None:
        kept = f" of the types in --instance-types (it has {', '.join(result.types_in_job) or 'none'})"
    return f"job {result.job_name} has no instance recommendations{kept} ({len(result.serverless)} serverless)"


class _Refused(click.ClickException):
    exit_code = 2


def _instance_types(ctx: click.Context, param: click.Parameter, value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise click.BadParameter("no instance type given", ctx=ctx, param=param)
    bad = sorted(name for name in names if not re.match(INSTANCE_TYPE_PATTERN, name))
    if bad:
        raise click.BadParameter(
            f"not SageMaker instance types (names like ml.g5.xlarge): {', '.join(bad)}", ctx, param
        )
    return names


def _format(data: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(data), indent=2).decode()


def _merged(profile: BinaryIO, entries: list[dict[str, Any]]) -> str:
    """PROFILE with `load_tests` set to `entries`, checked by decoding it as a WorkloadProfile."""
    from service.contract import WorkloadProfile

    name = getattr(profile, "name", "--profile")
    try:
        data = msgspec.json.decode(profile.read())
    except msgspec.DecodeError as exc:
        raise _Refused(f"{name}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _Refused(f"{name}: a profile is a JSON object")
    encoded = msgspec.json.encode(data | {"load_tests": entries})
    try:
        msgspec.json.decode(encoded, type=WorkloadProfile)
    except msgspec.ValidationError as exc:
        raise _Refused(f"{name} with these load_tests is not a valid profile: {exc}") from exc
    return msgspec.json.format(encoded, indent=2).decode()


@click.group("load-tests")
def load_tests() -> None:
    """Load-test results to put in a workload profile."""


@load_tests.command("import")
@click.argument("ir_json", metavar="IR.json", type=click.File("rb"))
@click.option(
    "--profile",
    metavar="PROFILE.json",
    type=click.File("rb"),
    default=None,
    help="Print this profile with its load_tests replaced by the converted ones (checked as a whole).",
)
@click.option(
    "--serverless",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the job's serverless recommendations here (JSON, rows verbatim); they are no instance load tests.",
)
@click.option(
    "--instance-types",
    metavar="TYPE,...",
    default=None,
    callback=_instance_types,
    help="Keep only these instance types, e.g. ml.g5.xlarge,ml.g5.2xlarge (a profile holds at most 50 tests).",
)
def import_command(
    ir_json: BinaryIO, profile: BinaryIO | None, serverless: Path | None, instance_types: frozenset[str] | None
) -> None:
    """Convert an Inference Recommender job (IR.json, or - for stdin) into load_tests.

    IR.json is what this prints:

    \b
        aws sagemaker describe-inference-recommendations-job --job-name NAME

    Each instance recommendation becomes a load test: per_instance_rps = MaxInvocations / 60, and
    ModelLatency (latency at the maximum rate, not a p99) with latency_measure at_max_invocations.
    Prints {"load_tests": [...]}, or with --profile the whole profile. Exit 2 when the job cannot be
    converted.
    """
    name = getattr(ir_json, "name", "IR.json")
    try:
        result = convert_job(parse_response(ir_json.read()), instance_types)
    except ImportRefused as exc:
        raise _Refused(f"{name}: {exc}") from exc
    if serverless is not None:
        serverless.write_text(_format({"JobName": result.job_name, "InferenceRecommendations": result.serverless}))
    _report(result, serverless, instance_types)
    if not result.load_tests:
        raise _Refused(f"{name}: {no_instances(result, instance_types)}")
    click.echo(_merged(profile, result.load_tests) if profile else _format({"load_tests": result.load_tests}))


def _report(result: Conversion, serverless: Path | None, instance_types: frozenset[str] | None) -> None:
    where = f"written to {serverless}" if serverless else "not imported; --serverless FILE keeps them"
    click.echo(f"job {result.job_name}: {len(result.load_tests)} load test(s)", err=True)
    click.echo(f"{len(result.serverless)} serverless recommendation(s) set aside ({where})", err=True)
    if result.endpoint_performances:
        click.echo(
            f"{result.endpoint_performances} EndpointPerformances ignored: rates of existing endpoints, "
            "with no instance type or count",
            err=True,
        )
    missing = sorted((instance_types or frozenset()) - set(result.types_in_job))
    if missing:
        click.echo(f"--instance-types not in the job: {', '.join(missing)}", err=True)
