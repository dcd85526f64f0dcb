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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from apiclients import LOCAL_MODE_HEADERS
from candidates import write_candidate
from click.testing import CliRunner, Result
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.app import create_app
from service.cli import main
from service.db import AuditRepository, create_engine
from service.rulebook.loader import load_ruleset
from service.services.activation import Activator
from service.services.registry import RulesetRegistry
from service.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
Client = AsyncTestClient  # type: ignore[type-arg]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


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
        client.headers.update(LOCAL_MODE_HEADERS)
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
        get_settings.cache_clear()  # read again from the CLI's environment
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


# ---------------------------------------------------------------- one version, one ruleset


async def test_reload_of_other_files_under_a_stored_version_is_refused(rules_client: tuple[Client, Path]) -> None:
    client, rules = rules_client
    before = (await _decide(client))["ruleset"]
    edited = load_ruleset(write_candidate(rules, steady_factor="2.0")).sha256  # a rule changed, the version did not
    response = await client.post("/v1/rulesets/reload")
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["code"] == "ruleset-version-conflict"
    assert (problem["version"], problem["stored_sha256s"], problem["sha256"]) == (
        before["version"],  # type: ignore[index]
        [before["sha256"]],  # type: ignore[index]
        edited,
    )
    assert before["sha256"] in problem["detail"] and edited in problem["detail"]  # type: ignore[index]
    assert (await _decide(client))["ruleset"] == before
    assert len((await client.get("/v1/rulesets/activations")).json()["items"]) == 1


async def _activate_cli(database_url: str, directory: Path) -> Result:
    def invoke() -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(
                main, ["rules", "activate", str(directory)], env={"ADVISOR_DATABASE_URL": database_url}
            )
        finally:
            get_settings.cache_clear()

    return await asyncio.to_thread(invoke)


async def test_cli_activation_of_other_files_under_a_stored_version_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    rules = write_candidate(tmp_path / "staged", version="2027.1.3")
    first = load_ruleset(rules).sha256
    activated = await _activate_cli(database_url, rules)
    assert activated.exit_code == 0, activated.output
    assert activated.stdout == f"activated ruleset 2027.1.3 sha256 {first}\n"
    edited = load_ruleset(write_candidate(rules, version="2027.1.3", steady_factor="2.0")).sha256
    refused = await _activate_cli(database_url, rules)
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: ruleset version '2027.1.3' is already stored with sha256 {first}; these files hash to {edited}: "
        "bump `version` in ruleset.yaml; the active ruleset is unchanged\n"
    )
    again = await _activate_cli(database_url, write_candidate(rules, version="2027.1.3"))  # the stored files again
    assert again.exit_code == 0, again.output
    assert again.stdout == f"already active: ruleset 2027.1.3 sha256 {first}\n"


async def test_cli_lint_errors_name_the_files_activated(database_url: str, tmp_path: Path) -> None:
    rules = write_candidate(tmp_path / "staged", version="2027.1.4")
    family = rules / "tables" / "family.yaml"
    family.write_text(
        family.read_text().replace(
            "rules:\n", "rules:\n  - id: everything-m\n    then: {family: m}\n    because: all general purpose\n", 1
        )
    )
    result = await _activate_cli(database_url, rules)
    assert result.exit_code == 1
    unreachable = [line for line in result.stderr.splitlines() if "unreachable" in line]
    assert unreachable and all(line.startswith(f"{rules.as_posix()}/tables/family.yaml:") for line in unreachable)


async def test_a_version_stored_twice_before_is_ambiguous_and_each_is_read_by_hash(
    rules_client: tuple[Client, Path], database_url: str, tmp_path: Path
) -> None:
    """A database from before activation refused a second ruleset under one version."""
    client, rules = rules_client
    one = load_ruleset(write_candidate(tmp_path / "one", version="2027.1.5"))
    two = load_ruleset(write_candidate(tmp_path / "two", version="2027.1.5", steady_factor="2.0"))
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.begin() as conn:
            for loaded, at in ((one, T0), (two, T0 + timedelta(hours=1))):
                await AuditRepository(conn).save_ruleset(
                    loaded.sha256, loaded.version, loaded.description, loaded.files, at
                )
    finally:
        await engine.dispose()
    hashes = [one.sha256, two.sha256]

    def assert_ambiguous(response: httpx.Response) -> None:
        assert response.status_code == 409, response.text
        problem = response.json()
        assert (problem["code"], problem["version"], problem["sha256s"]) == (
            "ruleset-version-ambiguous",
            "2027.1.5",
            hashes,
        )
        assert all(sha in problem["detail"] for sha in hashes)

    assert_ambiguous(await client.get("/v1/rulesets/2027.1.5"))
    for loaded in (one, two):
        stored = await client.get(f"/v1/rulesets/{loaded.sha256}")
        assert stored.status_code == 200, stored.text
        assert (stored.json()["version"], stored.json()["files"]) == ("2027.1.5", dict(loaded.files))
    assert_ambiguous(await client.post("/v1/recommendations?ruleset_version=2027.1.5", json=WORKED_EXAMPLE))
    decided = await _decide(client)
    assert_ambiguous(await client.post(f"/v1/decisions/{decided['decision_id']}/replay?ruleset_version=2027.1.5"))

    # One of them may be activated again (it is stored); its version still names neither.
    write_candidate(rules, version="2027.1.5")
    reloaded = await client.post("/v1/rulesets/reload")
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["sha256"] == one.sha256
    assert (await _decide(client))["ruleset"] == {"version": "2027.1.5", "sha256": one.sha256}
    assert_ambiguous(await client.post("/v1/recommendations?ruleset_version=2027.1.5", json=WORKED_EXAMPLE))
    listed = (await client.get("/v1/rulesets")).json()["items"]
    assert sorted(r["sha256"] for r in listed if r["version"] == "2027.1.5") == sorted(hashes)
