"""Finding 3 and 4(a) of the security review over HTTP: one impact request cannot stall a worker.

Before: a candidate was parsed, compiled and replayed inside the event loop, so while it ran the worker answered
nothing, ``/healthz`` included (12 s for the review's alias bomb); any number of runs could hold pooled connections
at once; 900 nested brackets were an unhandled 500.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiclients import MakeClient
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from recorded import record_copies
from served import serve

from service.rulebook.loader import ruleset_files
from service.rulebook.safe_yaml import MAX_YAML_DEPTH, MAX_YAML_NODES

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
Client = AsyncTestClient  # type: ignore[type-arg]
HISTORY = 8000  # decisions: long enough that an impact run spans many health probes


def _files(**extra: str) -> dict[str, str]:
    return dict(ruleset_files(RULES_DIR)) | extra


async def _history(client: Client | httpx.AsyncClient, database_url: str) -> None:
    response = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
    assert response.status_code == 201, response.text
    await record_copies(database_url, response.json()["decision_id"], HISTORY)


# These two need a real server: the in-process test client runs one request at a time.


async def _probe_while(run: asyncio.Task[httpx.Response], probe: httpx.AsyncClient) -> list[float]:
    """Seconds each /healthz took that was sent while ``run`` was under way."""
    latencies: list[float] = []
    await asyncio.sleep(0.01)  # the run's request is on its way
    while not run.done():
        started = time.perf_counter()
        assert (await probe.get("/healthz")).status_code == 200
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return latencies


async def test_healthz_answers_within_100_ms_while_an_impact_runs(tmp_path: Path) -> None:
    # Alias chains of 111,111 nodes in each of 10 files: all of them were built in the event loop; now one budget
    # stops the second file, in a worker thread.
    padded = _files(**{f"tables/pad{i}.yaml": _bomb(4) for i in range(10)})
    with serve(tmp_path) as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=60) as client, httpx.AsyncClient(base_url=base) as probe:
            await _history(client, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
            parse = asyncio.create_task(client.post("/v1/rulesets/impact", json={"files": padded}))
            while_parsing = await _probe_while(parse, probe)
            run = asyncio.create_task(client.post("/v1/rulesets/impact", json={"files": _files()}))
            while_replaying = await _probe_while(run, probe)
    assert (await parse).status_code == 422
    response = await run
    assert response.status_code == 200, response.text
    assert response.json()["decisions"] == HISTORY + 1
    assert len(while_parsing) >= 1 and len(while_replaying) >= 5, (while_parsing, while_replaying)
    assert max(while_parsing + while_replaying) < 0.1, (while_parsing, while_replaying)


async def test_at_most_the_configured_impact_runs_at_once(tmp_path: Path) -> None:
    with serve(tmp_path, impact_concurrency="1") as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=60) as client, httpx.AsyncClient(base_url=base) as other:
            await _history(client, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
            first = asyncio.create_task(client.post("/v1/rulesets/impact", json={"files": _files()}))
            await asyncio.sleep(0.3)  # the first run holds the one slot: it replays the history in a worker thread
            assert not first.done()
            second = await other.post("/v1/rulesets/impact", json={"files": _files()})
            assert second.status_code == 503, second.text
            assert second.json()["code"] == "impact-busy"
            assert int(second.headers["retry-after"]) > 0
            assert (await first).status_code == 200
            after = await other.post("/v1/rulesets/impact", json={"files": _files(), "limit": 10})
            assert after.status_code == 200, after.text


async def test_a_run_past_its_deadline_is_a_503_saying_how_far_it_got(
    make_client: MakeClient, database_url: str
) -> None:
    async with make_client(impact_deadline_s=0.05) as client:
        await _history(client, database_url)
        response = await client.post("/v1/rulesets/impact", json={"files": _files()})
        assert response.status_code == 503, response.text
        problem = response.json()
        assert problem["code"] == "impact-deadline-exceeded"
        assert problem["deadline_s"] == 0.05
        assert 0 <= problem["decisions_replayed"] < HISTORY + 1
        assert "advisor rules impact" in problem["detail"]


_NON_TABLE_FILES = {name: text for name, text in _files().items() if not name.startswith("tables/")}


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        # The review's body: alias chains in every table file of a 64-file candidate (the most a candidate may have),
        # each under the old per-file cap.
        (
            _NON_TABLE_FILES | {f"tables/t{i}.yaml": _bomb(4) for i in range(64 - len(_NON_TABLE_FILES))},
            f"more than {MAX_YAML_NODES} YAML nodes",
        ),
        (_files(**{"ruleset.yaml": "[" * 900 + "]" * 900}), f"nested more than {MAX_YAML_DEPTH} levels deep"),
    ],
    ids=["alias-bomb-in-64-files", "900-nested-brackets"],
)
async def test_hostile_candidates_are_a_422_naming_the_limit(
    client: Client, files: dict[str, str], message: str, caplog: Any
) -> None:
    response = await client.post("/v1/rulesets/impact", json={"files": files})
    assert response.status_code == 422, response.text
    assert any(message in e["message"] for e in response.json()["errors"]), response.json()["errors"][:3]
    assert not [r for r in caplog.records if r.exc_info], "a client's mistake logged a traceback"
