"""What a worker checks and changes in its process while it serves, and undoes when it stops."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

import pytest
from candidates import write_candidate
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from sqlalchemy import text

from service.app import create_app
from service.db.connection import create_single_use_engine
from service.db.migrate import current_revision, downgrade, head_revision, upgrade
from service.rulebook.loader import RulesetInvalid, load_ruleset
from service.services.activation import Activator
from service.services.registry import RulesetRegistry
from service.settings import Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


async def test_the_collector_threshold_is_set_while_serving_and_restored_after(make_client: Any) -> None:
    before = gc.get_threshold()
    async with make_client(gc_gen0_threshold=12_345) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before


async def test_zero_leaves_the_collector_threshold_alone(make_client: Any) -> None:
    before = gc.get_threshold()
    async with make_client(gc_gen0_threshold=0):
        assert gc.get_threshold() == before


async def eventually_ready(client: Any, *, within_s: float) -> float:
    """Seconds until /readyz answers 200 (fails after ``within_s``)."""
    started = time.monotonic()
    while (response := await client.get("/readyz")).status_code != 200:
        assert time.monotonic() - started < within_s, response.text
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_a_worker_stays_unready_on_a_database_missing_its_migrations_until_they_are_applied(
    database_url: str, make_client: Any
) -> None:
    """It serves, unready and refusing decisions with the missing revisions named, and changes nothing; once
    `advisor db upgrade` has run it comes into service by itself."""
    await downgrade(database_url, "0004")
    async with make_client(migrate_on_start=False) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["migrations"] == "missing 0005, 0006, 0007, 0008, 0009: run `advisor db upgrade`"
        assert checks["ruleset"] == "none active: waiting for the migrations"
        refused = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "2"
        assert await current_revision(database_url) == "0004"  # it looked, and changed nothing

        await upgrade(database_url)
        assert await eventually_ready(client, within_s=5) < 5
        assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201


async def test_migrate_on_start_migrates_an_empty_database_when_it_answers(blank_database_url: str) -> None:
    app = create_app(Settings(database_url=blank_database_url, rules_dir=RULES_DIR, migrate_on_start=True))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        assert (await client.get("/readyz")).json()["checks"]["migrations"] == "ok"
        assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201
    assert await current_revision(blank_database_url) == head_revision()


async def test_without_activate_on_start_a_worker_waits_for_the_first_activation(
    database_url: str, make_client: Any
) -> None:
    async with make_client(activate_on_start=False) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["ruleset"] == (
            "none active: no ruleset has been activated yet: run `advisor rules activate`"
        )
        assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 503

        engine = create_single_use_engine(database_url)
        try:  # as `advisor rules activate` does, from another process
            await Activator(engine, RulesetRegistry(engine)).activate(load_ruleset(RULES_DIR), by="test")
        finally:
            await engine.dispose()
        await eventually_ready(client, within_s=5)
        assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201


async def test_rules_on_disk_that_do_not_validate_refuse_the_start(database_url: str, tmp_path: Path) -> None:
    broken = write_candidate(tmp_path / "rules")
    family = broken / "tables" / "family.yaml"
    family.write_text(family.read_text().replace("because:", "becuase:", 1))
    app = create_app(Settings(database_url=database_url, rules_dir=broken))
    with pytest.RaisesGroup(pytest.RaisesExc(RulesetInvalid)):  # the test client runs the lifespan in a task group
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1"):
            pass


async def test_a_worker_starts_on_a_database_a_newer_release_migrated(database_url: str, make_client: Any) -> None:
    """A release must run on the next one's schema (deploy/README.md): an unknown, newer revision is no reason to
    refuse."""
    engine = create_single_use_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await engine.dispose()
    async with make_client() as client:
        assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201


async def test_rules_on_disk_reusing_a_stored_version_keep_the_worker_unready_naming_why(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_single_use_engine(database_url)
    try:  # the shipped rules are stored under their version
        await Activator(engine, RulesetRegistry(engine)).activate(load_ruleset(RULES_DIR), by="test")
    finally:
        await engine.dispose()
    edited = write_candidate(tmp_path / "rules", steady_factor="2.0")  # other files, the same version
    app = create_app(Settings(database_url=database_url, rules_dir=edited, ruleset_poll_interval_s=0.2))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "already stored" in str(ready.json()["checks"]) and "bump `version`" in str(ready.json()["checks"])
        assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 503
    conflicts = [r for r in caplog.records if "already stored" in r.getMessage()]
    assert conflicts and all(r.exc_info is None for r in conflicts)  # an operator's fix: one line, no traceback
