"""The body of POST /v1/recommendations (service/api/json_body.py): decoded strictly, every failing field listed by
its full path, in words a caller can act on; the stored profile is the body as received."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.api.body_errors import path_key
from service.api.json_body import MAX_DEPTH, nested_deeper_than

Client = AsyncTestClient  # type: ignore[type-arg]
JSON = {"content-type": "application/json"}
_TESTED = {"instance_type": "ml.c5.xlarge", "per_instance_rps": 20}


def _body(change: Callable[[dict[str, Any]], object]) -> bytes:
    profile = copy.deepcopy(WORKED_EXAMPLE)
    change(profile)
    return json.dumps(profile).encode()


def _worked_with(old: str, new: str) -> bytes:
    text = json.dumps(WORKED_EXAMPLE)
    assert old in text
    return text.replace(old, new).encode()


async def _problem(client: Client, content: bytes, status: int) -> dict[str, Any]:
    response = await client.post("/v1/recommendations", content=content, headers=JSON)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert "data" not in json.dumps(problem)  # Litestar's name for a body, meaningless to a caller
    return problem


@pytest.mark.parametrize(
    ("content", "key", "message"),
    [
        (b"null", "", "must be an object, not null"),
        (b"[]", "", "must be an object, not an array"),
        (_body(lambda p: p.update(extra=1)), "extra", "is not a known field (known fields: az_count, load_tests, "),
        (_body(lambda p: p.pop("sla")), "sla", "is required"),
        (_body(lambda p: p["sla"].pop("availability")), "sla.availability", "is required"),
        (_body(lambda p: p["sla"].update(foo=1)), "sla.foo", "is not a known field (known fields: availability, "),
        (_body(lambda p: p["traffic"].update(peak_rps=-1)), "traffic.peak_rps", "must be at least 0.001"),
        (
            _body(lambda p: p["traffic"].update(peak_rps="150")),
            "traffic.peak_rps",
            "must be a number or null, not a string",
        ),
        (_body(lambda p: p["workload"].update(bound="tpu")), "workload.bound", 'must be one of "cpu", "gpu", "memory"'),
        (_body(lambda p: p["workload"].update(sharding="x")), "workload.sharding", 'must be one of "none", '),
        (_body(lambda p: p["sla"].update(availability=True)), "sla.availability", "must be a number, not a boolean"),
        (_body(lambda p: p.update(az_count="2")), "az_count", "must be an integer or null, not a string"),
        (_body(lambda p: p.update(az_count=2.5)), "az_count", "must be an integer or null, not a number"),
        (_body(lambda p: p.update(name="-bad-")), "name", "must match the pattern ^[a-zA-Z0-9]"),
        (
            _body(lambda p: p["traffic"].update(burstiness="periodic", peak_windows=[{"cron": 5, "rps": 10}])),
            "traffic.peak_windows[0].cron",
            "must be a string, not an integer",
        ),
        (
            _body(lambda p: p.update(load_tests=[{**_TESTED, "x": 1}])),
            "load_tests[0].x",
            "is not a known field",
        ),
        (
            _body(lambda p: p.update(load_tests=[{**_TESTED, "environment": {"A.B": 7}}])),
            'load_tests[0].environment["A.B"]',
            "must be a string, not an integer",
        ),
    ],
)
async def test_a_field_that_does_not_fit_is_422_keyed_by_its_full_path(
    client: Client, content: bytes, key: str, message: str
) -> None:
    problem = await _problem(client, content, 422)
    assert problem["code"] == "invalid-request"
    [error] = problem["errors"]
    assert (error["key"], error["source"]) == (key, "body")
    assert error["message"].startswith(message), error["message"]
    assert problem["detail"] == f"{key or 'the body'}: {error['message']}"


async def test_every_failing_field_is_listed_at_once(client: Client) -> None:
    profile: dict[str, Any] = copy.deepcopy(WORKED_EXAMPLE)
    profile["workload"] = {"bound": "tpu", "model_kind": "llm", "typo": 1}
    profile["traffic"]["peak_rps"] = "150"
    profile["sla"].pop("availability")
    profile["load_tests"] = [{"instance_type": "c5.xlarge", "per_instance_rps": 0}]
    problem = await _problem(client, json.dumps(profile).encode(), 422)
    assert {e["key"]: e["message"].split(" (")[0] for e in problem["errors"]} == {
        "workload.bound": 'must be one of "cpu", "gpu", "memory"',
        "workload.typo": "is not a known field",
        "traffic.peak_rps": "must be a number or null, not a string",
        "sla.availability": "is required",
        "load_tests[0].instance_type": "must match the pattern ^ml\\.[a-z0-9-]+\\.[a-z0-9]+$",
        "load_tests[0].per_instance_rps": "must be at least 0.001",
        # a cross-field rule, listed with the shape's errors: an llm's size decides its instance type
        "workload.model_memory_gib": "is required when bound is gpu or memory, or model_kind is llm",
    }
    assert problem["detail"].count(";") == len(problem["errors"]) - 1


async def test_cross_field_rules_are_listed_with_the_shape_errors(client: Client) -> None:
    profile: dict[str, Any] = copy.deepcopy(WORKED_EXAMPLE)
    profile["traffic"] |= {
        "burstiness": "sometimes",
        "mean_rps": 200,
        "peak_windows": [{"cron": "cron(0 8 ? * MON-FRI *)", "rps": 300}],
    }
    del profile["traffic"]["per_instance_rps"]
    problem = await _problem(client, json.dumps(profile).encode(), 422)
    assert [e["key"] for e in problem["errors"]] == [
        "traffic.burstiness",
        "traffic.mean_rps",
        "traffic.peak_windows[0].rps",
        "traffic.per_instance_rps",
    ]
    assert problem["errors"][1]["message"] == "is above traffic.peak_rps (150), which must be the overall peak"


async def test_a_valid_shape_meets_the_cross_field_rules_in_the_engine(client: Client) -> None:
    profile: dict[str, Any] = copy.deepcopy(WORKED_EXAMPLE)
    profile["traffic"]["mean_rps"] = 200
    problem = await _problem(client, json.dumps(profile).encode(), 422)
    assert problem["code"] == "mean-above-peak"
    assert problem["errors"] == [
        {
            "key": "traffic.mean_rps",
            "message": "traffic.mean_rps (200) is above traffic.peak_rps (150).",
            "source": "body",
        }
    ]


async def test_bounds_litestar_left_out_of_the_schema_are_checked_and_named(client: Client) -> None:
    problem = await _problem(client, _body(lambda p: p["workload"].update(model_memory_gib=0)), 422)
    assert problem["errors"] == [
        {"key": "workload.model_memory_gib", "message": "must be greater than 0", "source": "body"}
    ]
    tested = {**_TESTED, "environment": {f"K{i}": "v" for i in range(33)}}
    problem = await _problem(client, _body(lambda p: p.update(load_tests=[tested])), 422)
    assert problem["errors"] == [
        {"key": "load_tests[0].environment", "message": "must have at most 32 entries", "source": "body"}
    ]


@pytest.mark.parametrize(
    "content",
    [
        _body(lambda p: p.update(az_count=3.0)),  # JSON has one kind of number: 3.0 is the integer 3
        _worked_with('"peak_rps": 150', '"peak_rps": 150.0'),
        _worked_with('"name": "fraud-xgb"', '"name": "fraud\\u002dxgb"'),  # an escaped "-"
        _worked_with('"name": "fraud-xgb"', '"name" :"fraud-xgb"'),  # spacing is free
    ],
    ids=["integral-float", "float-for-number", "escaped", "spacing"],
)
async def test_valid_spellings_are_accepted(client: Client, content: bytes) -> None:
    response = await client.post("/v1/recommendations", content=content, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["capacity"]["base_instances"] == 11  # the worked example's answer: the value was read


async def test_a_colon_inside_a_string_does_not_hide_or_fake_a_repeated_key(client: Client) -> None:
    tested = {"instance_type": "ml.c5.xlarge", "per_instance_rps": 20, "source": "run: 12:30, p99: ok"}
    unique = _body(lambda p: p.update(load_tests=[tested]))
    assert (await client.post("/v1/recommendations", content=unique, headers=JSON)).status_code == 201
    repeated = unique.replace(b'"source":', b'"per_instance_rps": 20, "source":')
    problem = await _problem(client, repeated, 400)
    assert (problem["code"], problem["detail"]) == (
        "duplicate-key",
        'the key "per_instance_rps" appears twice in one object; send each key once.',
    )


async def test_the_stored_profile_is_the_body_as_received(client: Client) -> None:
    content = (
        b'{ "workload" : {"bound":"cpu","model_kind":"classic_ml","model_memory_gib":2},\n'
        + json.dumps({k: v for k, v in WORKED_EXAMPLE.items() if k != "workload"}).encode()[1:]
    )
    created = await client.post("/v1/recommendations", content=content, headers=JSON)
    assert created.status_code == 201, created.text
    stored = await client.get(f"/v1/decisions/{created.json()['decision_id']}")
    assert stored.json()["profile"] == json.loads(content)


@pytest.mark.parametrize(
    ("body", "deeper"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, False),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), True),
        (b'{"a": "' + b"[" * 100 + b'"}', False),  # brackets inside a string
        (b'{"a": "\\"[[[", "b": ' + b"{}," * 100 + b"1}", False),  # an escaped quote does not end the string
        (b"[]" * 1000, False),  # many brackets, never deep
        (b'{"a":' * 40 + b"1" + b"}" * 40, True),
    ],
)
def test_nesting_is_measured_outside_strings(body: bytes, deeper: bool) -> None:
    assert nested_deeper_than(body, MAX_DEPTH) is deeper


def test_path_keys() -> None:
    assert path_key(["traffic", "peak_windows", 0, "cron"]) == "traffic.peak_windows[0].cron"
    assert path_key(["files", "ruleset.yaml"]) == 'files["ruleset.yaml"]'
    assert path_key([]) == ""
