"""`advisor load-tests import`: an Inference Recommender job's results become the profile's load_tests."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.session
import msgspec
import pytest
from botocore.exceptions import ParamValidationError
from botocore.model import Shape
from botocore.stub import Stubber
from click.testing import CliRunner, Result

from service.cli import main
from service.contract import WorkloadProfile
from service.contract.profile import LoadTest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "inference-recommender" / "describe-job.json"
OPERATION = "describe_inference_recommendations_job"
JOB = "churn-xgb-ir-default"


def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def _typed(value: Any, shape: Shape) -> Any:
    """`value` as botocore hands it out: timestamps (strings in the AWS CLI's output) as datetimes."""
    if shape.type_name == "timestamp" and isinstance(value, str):
        return datetime.fromisoformat(value)
    if shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {k: _typed(v, members[k]) if k in members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_typed(v, shape.member) for v in value]  # type: ignore[attr-defined]
    return value


def _stub_response(data: dict[str, Any]) -> dict[str, Any]:
    """`data` served by a stubbed sagemaker client; Stubber checks it against botocore's output shape."""
    client = botocore.session.get_session().create_client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    output = client.meta.service_model.operation_model("DescribeInferenceRecommendationsJob").output_shape
    typed = _typed(data, output)
    with Stubber(client) as stubber:
        stubber.add_response(OPERATION, typed)
        response: dict[str, Any] = client.describe_inference_recommendations_job(JobName=data["JobName"])
    response.pop("ResponseMetadata", None)
    assert response == typed
    return response


def _run(tmp_path: Path, data: dict[str, Any] | str, *args: str) -> Result:
    path = tmp_path / "ir.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return CliRunner().invoke(main, ["load-tests", "import", str(path), *args])


def _imported(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    tests: list[dict[str, Any]] = json.loads(result.stdout)["load_tests"]
    return tests


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = data["InferenceRecommendations"]
    return rows


# --- the fixture is a real response shape ------------------------------------------------------------------


def test_fixture_is_a_describe_inference_recommendations_job_response() -> None:
    data = _fixture()
    _stub_response(data)
    rows = _rows(data)
    assert sum("InstanceType" in r["EndpointConfiguration"] for r in rows) >= 2
    assert any("ServerlessConfig" in r["EndpointConfiguration"] for r in rows)
    assert any(r["ModelConfiguration"].get("EnvironmentParameters") for r in rows)


def test_the_shape_check_rejects_a_malformed_response() -> None:
    data = _fixture()
    _rows(data)[0]["Metrics"]["MaxInvocations"] = "1474"
    with pytest.raises(ParamValidationError, match="MaxInvocations"):
        _stub_response(data)


# --- conversion ----------------------------------------------------------------------------------------------


def test_each_instance_row_becomes_a_load_test(tmp_path: Path) -> None:
    data = _fixture()
    result = _run(tmp_path, data)
    tests = _imported(result)
    instance_rows = [r for r in _rows(data) if "InstanceType" in r["EndpointConfiguration"]]
    assert len(tests) == len(instance_rows) == 3
    for test, row in zip(tests, instance_rows, strict=True):
        assert test["instance_type"] == row["EndpointConfiguration"]["InstanceType"]
        assert test["per_instance_rps"] == row["Metrics"]["MaxInvocations"] / 60
        assert test["p99_latency_ms"] == row["Metrics"]["ModelLatency"]
        assert test["latency_measure"] == "at_max_invocations"
        assert row["RecommendationId"] in test["source"] and JOB in test["source"]
        assert "not a p99" in test["source"]
        msgspec.convert(test, LoadTest)
    assert tests[0]["per_instance_rps"] == 1474 / 60
    assert tests[0]["environment"] == {"OMP_NUM_THREADS": "4", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    assert tests[1]["environment"] == {"OMP_NUM_THREADS": "2"}
    assert "environment" not in tests[2]


def test_several_configurations_of_one_type_are_all_kept(tmp_path: Path) -> None:
    tests = _imported(_run(tmp_path, _fixture()))
    c5 = [t for t in tests if t["instance_type"] == "ml.c5.xlarge"]
    assert len(c5) == 2
    assert c5[0]["source"] != c5[1]["source"]
    assert c5[0]["per_instance_rps"] != c5[1]["per_instance_rps"]


def test_serverless_rows_are_set_aside_and_counted(tmp_path: Path) -> None:
    result = _run(tmp_path, _fixture())
    tests = _imported(result)
    assert len(tests) == 3
    assert not [t for t in tests if "Pe4Nj6Ya" in t["source"] or t["per_instance_rps"] == 300 / 60]
    assert "1 serverless recommendation(s) set aside" in result.stderr


def test_serverless_rows_are_written_with_serverless(tmp_path: Path) -> None:
    data = _fixture()
    out = tmp_path / "serverless.json"
    result = _run(tmp_path, data, "--serverless", str(out))
    assert len(_imported(result)) == 3
    written = json.loads(out.read_text())
    assert written == {"JobName": JOB, "InferenceRecommendations": [_rows(data)[3]]}
    assert f"written to {out}" in result.stderr


def test_a_row_without_an_id_is_cited_by_position(tmp_path: Path) -> None:
    data = _fixture()
    del _rows(data)[2]["RecommendationId"]
    tests = _imported(_run(tmp_path, data))
    assert f"job {JOB}, recommendation #3:" in tests[2]["source"]


def test_the_aws_cli_nan_for_unavailable_metrics_is_accepted(tmp_path: Path) -> None:
    text = FIXTURE.read_text().replace('"CpuUtilization": 92.5', '"CpuUtilization": NaN')
    assert "NaN" in text
    assert len(_imported(_run(tmp_path, text))) == 3


def test_endpoint_performances_are_ignored_and_counted(tmp_path: Path) -> None:
    data = _fixture() | {"JobType": "Advanced"}
    data["EndpointPerformances"] = [
        {"Metrics": {"MaxInvocations": 9000, "ModelLatency": 40}, "EndpointInfo": {"EndpointName": "churn-prod"}}
    ]
    _stub_response(data)
    result = _run(tmp_path, data)
    tests = _imported(result)
    assert len(tests) == 3 and 9000 / 60 not in [t["per_instance_rps"] for t in tests]
    assert "1 EndpointPerformances ignored" in result.stderr


def test_instance_types_keeps_only_those(tmp_path: Path) -> None:
    result = _run(tmp_path, _fixture(), "--instance-types", "ml.m5.xlarge, ml.g5.xlarge")
    tests = _imported(result)
    assert [t["instance_type"] for t in tests] == ["ml.m5.xlarge"]
    assert "--instance-types not in the job: ml.g5.xlarge" in result.stderr


@pytest.mark.parametrize("value", ["g5.xlarge", "ml.g5.xlarge,ML.C5.XLARGE", " , "])
def test_instance_types_must_be_sagemaker_types(tmp_path: Path, value: str) -> None:
    result = _run(tmp_path, _fixture(), "--instance-types", value)
    assert result.exit_code == 2
    assert "--instance-types" in result.stderr and result.stdout == ""


def test_more_rows_than_a_profile_holds_are_refused_not_trimmed(tmp_path: Path) -> None:
    data = _fixture()
    template = _rows(data)[2]
    rows = []
    for i in range(51):
        row = copy.deepcopy(template)
        row["RecommendationId"] = f"{JOB}/row{i:05d}"
        row["EndpointConfiguration"]["InstanceType"] = "ml.m5.large" if i % 2 else "ml.c5.large"
        rows.append(row)
    data["InferenceRecommendations"] = rows
    refused = _run(tmp_path, data)
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "51 instance recommendations" in refused.stderr and "--instance-types" in refused.stderr
    assert "ml.c5.large (26)" in refused.stderr
    assert len(_imported(_run(tmp_path, data, "--instance-types", "ml.m5.large"))) == 25


# --- --profile -----------------------------------------------------------------------------------------------

PROFILE: dict[str, Any] = {
    "workload": {"bound": "cpu", "model_kind": "classic_ml"},
    "traffic": {"peak_rps": 400, "burstiness": "steady"},
    "sla": {"p99_latency_ms": 250, "availability": 0.999},
    "priority": "cost",
    "load_tests": [{"instance_type": "ml.m5.large", "per_instance_rps": 5}],
}


def test_profile_gets_the_load_tests_in_place_of_its_own(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(PROFILE))
    alone = _imported(_run(tmp_path, _fixture()))
    result = _run(tmp_path, _fixture(), "--profile", str(profile))
    assert result.exit_code == 0, result.output
    merged = json.loads(result.stdout)
    assert merged == PROFILE | {"load_tests": alone}
    decoded = msgspec.json.decode(result.stdout, type=WorkloadProfile)
    assert decoded.traffic.per_instance_rps is None
    assert decoded.load_tests is not None
    assert [t.instance_type for t in decoded.load_tests] == ["ml.c5.xlarge", "ml.c5.xlarge", "ml.m5.xlarge"]
    assert [t.latency_measure for t in decoded.load_tests] == ["at_max_invocations"] * 3


def test_an_invalid_profile_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({k: v for k, v in PROFILE.items() if k != "sla"}))
    result = _run(tmp_path, _fixture(), "--profile", str(profile))
    assert result.exit_code == 2 and result.stdout == ""
    assert "not a valid profile" in result.stderr and "sla" in result.stderr


# --- refusals ------------------------------------------------------------------------------------------------


def _refused(tmp_path: Path, data: dict[str, Any] | str, *args: str) -> str:
    result = _run(tmp_path, data, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return result.stderr


def test_not_json_is_refused(tmp_path: Path) -> None:
    assert "not JSON" in _refused(tmp_path, '{"JobName": "x", ')


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"TrainingJobName": "x", "TrainingJobStatus": "Completed"},
        {"JobName": JOB, "Status": "COMPLETED"},
    ],
    ids=["array", "other-api", "no-recommendations"],
)
def test_other_documents_are_refused(tmp_path: Path, data: Any) -> None:
    stderr = _refused(tmp_path, json.dumps(data))
    assert "not a DescribeInferenceRecommendationsJob response" in stderr


def test_a_job_that_did_not_complete_is_refused_with_its_status(tmp_path: Path) -> None:
    failed = _fixture() | {"Status": "FAILED", "FailureReason": "Image not found"}
    del failed["InferenceRecommendations"]
    stderr = _refused(tmp_path, failed)
    assert "FAILED" in stderr and "Image not found" in stderr
    assert "IN_PROGRESS" in _refused(tmp_path, _fixture() | {"Status": "IN_PROGRESS"})


def test_a_job_without_instance_rows_is_refused(tmp_path: Path) -> None:
    data = _fixture()
    data["InferenceRecommendations"] = [_rows(data)[3]]
    out = tmp_path / "serverless.json"
    stderr = _refused(tmp_path, data, "--serverless", str(out))
    assert "no instance recommendations" in stderr and "1 serverless" in stderr
    assert json.loads(out.read_text())["InferenceRecommendations"] == [_rows(data)[0]]


def test_an_entry_outside_the_contract_names_its_recommendation(tmp_path: Path) -> None:
    data = _fixture()
    _rows(data)[1]["Metrics"]["MaxInvocations"] = 0
    stderr = _refused(tmp_path, data)
    assert f"{JOB}/L7pV3kQs" in stderr and "per_instance_rps" in stderr


def test_a_row_without_a_rate_is_refused(tmp_path: Path) -> None:
    data = _fixture()
    del _rows(data)[0]["Metrics"]
    assert f"{JOB}/Xq2R8bTm" in _refused(tmp_path, data) and "MaxInvocations" in _refused(tmp_path, data)
