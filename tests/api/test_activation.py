"""Ruleset activation: refused when broken, atomic per request, followed by every worker."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from candidates import write_candidate
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.activation import Activator
from service.app import create_app
from service.cli import main
from service.db import create_engine
from service.registry import RulesetRegistry
from service.rulebook.loader import load_ruleset
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
Client = AsyncTestClient  # type: ignore[type-arg]


def _copy_rules(tmp_path: Path) -> Path:
    return write_candidate(tmp_path / "rules")


def _bump(rules: Path, version: str, factor: str = "2.0") -> str:
    """Change the ruleset visibly: a new version, steady load gets another max capacity factor."""
    return load_ruleset(write_candidate(rules, version=version, steady_factor=factor)).sha256


@pytest.fixture
async def rules_client(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Client, Path]]:
    rules = _copy_rules(tmp_path)
    app = create_app(Settings(database_url=database_url, rules_dir=rules, ruleset_poll_interval_s=0.2))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        yield client, rules


async def _decide(client: Client, rps: float = 150) -> dict[str, object]:
    body = copy.deepcopy(WORKED_EXAMPLE)
    body["traffic"]["peak_rps"] = rps
    response = await client.post("/v1/recommendations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_broken_reload_is_refused_and_the_old_ruleset_keeps_answering(
    rules_client: tuple[Client, Path],
) -> None:
    client, rules = rules_client
    before = (await _decide(client))["ruleset"]
    family = rules / "tables" / "family.yaml"
    family.write_text(family.read_text().replace("because:", "becuase:", 1))
    response = await client.post("/v1/rulesets/reload")
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "ruleset-invalid"
    assert any("tables/family.yaml:" in e["message"] and "becuase" in e["message"] for e in problem["errors"])
    assert (await _decide(client))["ruleset"] == before
    assert len((await client.get("/v1/rulesets/activations")).json()["items"]) == 1


async def test_reload_with_a_lint_error_is_refused(rules_client: tuple[Client, Path]) -> None:
    client, rules = rules_client
    family = rules / "tables" / "family.yaml"
    # A catch-all first makes every later family rule unreachable.
    text = family.read_text()
    family.write_text(
        text.replace(
            "rules:\n",
            "rules:\n  - id: everything-m\n    then: {family: m}\n    because: everything is general purpose now\n",
            1,
        )
    )
    response = await client.post("/v1/rulesets/reload")
    assert response.status_code == 422
    assert any("unreachable" in e["message"] for e in response.json()["errors"])


async def test_reload_activates_and_is_recorded(rules_client: tuple[Client, Path]) -> None:
    client, rules = rules_client
    old = (await _decide(client))["ruleset"]
    new_sha = _bump(rules, "2027.1.0")
    response = await client.post("/v1/rulesets/reload")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["sha256"], body["changed"], body["previous_sha256"]) == (new_sha, True, old["sha256"])  # type: ignore[index]
    assert (await _decide(client))["ruleset"] == {"version": "2027.1.0", "sha256": new_sha}
    again = (await client.post("/v1/rulesets/reload")).json()
    assert again["changed"] is False
    history = (await client.get("/v1/rulesets/activations")).json()["items"]
    assert [h["sha256"] for h in history] == [new_sha, old["sha256"]]  # type: ignore[index]
    assert history[0]["activated_by"].startswith(("anonymous", "local", "key:"))
    assert history[1]["activated_by"].startswith("startup:")


async def test_reloads_under_load_never_mix_rulesets(rules_client: tuple[Client, Path]) -> None:
    """Every answer is wholly one ruleset's: replaying it under the ruleset it names is identical."""
    client, rules = rules_client
    answers: list[dict[str, object]] = []

    async def reload(version: str, factor: str) -> None:
        _bump(rules, version, factor=factor)
        assert (await client.post("/v1/rulesets/reload")).status_code == 200

    for i, version in enumerate(["2027.1.0", "2027.1.1", "2027.1.2"]):
        # Each wave of decisions runs while a reload happens in the middle of it.
        wave = await asyncio.gather(*(_decide(client, 100 + j) for j in range(40)), reload(version, str(2 + i)))
        answers += [a for a in wave if a is not None]
    seen = {a["ruleset"]["sha256"] for a in answers}  # type: ignore[index]
    assert len(seen) >= 2  # the load really spanned a switch
    for answer in answers:
        replay = (await client.post(f"/v1/decisions/{answer['decision_id']}/replay")).json()
        assert replay["original"]["identical"] is True, replay


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.postgres
def test_two_worker_processes_follow_an_activation(pg_database_url: str, tmp_path: Path) -> None:
    """`advisor serve --workers 2` on Postgres: both workers switch after `advisor rules activate`."""
    rules = _copy_rules(tmp_path)
    port = _free_port()
    env = os.environ | {
        "ADVISOR_DATABASE_URL": pg_database_url,
        "ADVISOR_RULES_DIR": str(rules),
        "ADVISOR_PORT": str(port),
        "ADVISOR_MIGRATE_ON_START": "0",
        "ADVISOR_RULESET_POLL_INTERVAL_S": "1",
        "ADVISOR_LOG_LEVEL": "WARNING",
    }
    advisor = str(Path(sys.executable).parent / "advisor")
    server = subprocess.Popen([advisor, "serve", "--workers", "2"], env=env, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"

        def workers() -> dict[str, str]:
            seen: dict[str, str] = {}
            for _ in range(40):
                try:
                    checks = httpx.get(f"{base}/readyz", timeout=2).json()["checks"]
                except (httpx.TransportError, ValueError):
                    continue
                seen[checks["worker"]] = checks["ruleset"].split()[-1]
            return seen

        deadline = time.monotonic() + 30
        while len(workers()) < 2:
            assert time.monotonic() < deadline, "two workers never answered"
            time.sleep(0.2)
        new_sha = _bump(rules, "2027.1.0")
        result = CliRunner(env={"ADVISOR_DATABASE_URL": pg_database_url}).invoke(
            main, ["rules", "activate", str(rules)]
        )
        assert result.exit_code == 0, result.output
        activated = time.monotonic()
        while True:
            seen = workers()
            if len(seen) >= 2 and set(seen.values()) == {new_sha}:
                break
            assert time.monotonic() - activated < 15, f"workers did not all switch: {seen}"
            time.sleep(0.1)
        print(f"both workers switched {time.monotonic() - activated:.2f} s after activation")  # noqa: T201
    finally:
        server.terminate()
        server.wait(timeout=15)


async def test_a_failing_poll_logs_one_traceback_then_that_it_works_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    activator = Activator(engine, RulesetRegistry(engine), poll_interval_s=0.001)
    refused = ConnectionRefusedError("refused")
    outcomes: list[Exception | None] = [refused, refused, refused, RuntimeError("not the database"), refused, None]
    activator.poll_outage.clock = lambda: 0.0 if outcomes else 100.0  # the success comes long after the failures
    done = asyncio.Event()

    async def sync(self: Activator) -> bool:
        outcome = outcomes.pop(0) if outcomes else None
        if not outcomes:
            done.set()
        if outcome is not None:
            raise outcome
        return False

    monkeypatch.setattr(Activator, "sync", sync)
    caplog.set_level(logging.WARNING, "service.activation")
    poller = asyncio.create_task(activator.poll_forever())
    try:
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.sleep(0.05)
    finally:
        poller.cancel()
        await engine.dispose()
    records = [(r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == "service.activation"]
    subject = "ruleset poll (the current ruleset keeps serving)"
    assert records == [
        (
            f"{subject}: refused (1 failed poll(s)); until it works again, further failures are summed up every 10 s",
            True,
        ),
        ("ruleset poll failed; still serving the current ruleset", True),  # not the database: every time
        (f"{subject}: working again, after failing for 0.0 s (4 failed poll(s) in all)", False),
    ]
