"""Impact analysis over the audit history, and rule diffs, as a reviewer of a rules change sees them."""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
from pathlib import Path
from typing import Any

from candidates import write_candidate
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from recorded import record_copy

from service import __version__
from service.cli import main
from service.db.connection import create_engine
from service.db.history import stream_history
from service.engine import compile_ruleset
from service.rulebook.diff import diff_rulesets
from service.rulebook.loader import load_ruleset
from service.services.impact import ImpactAnalysis, render_markdown
from service.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]


def _candidate(tmp_path: Path) -> Path:
    """The default rules, except classic ML below 100 RPS goes to general-purpose M instances."""
    return write_candidate(tmp_path / "candidate", version="2027.1.0", classic_to_m_below_100=True)


async def test_impact_counts_changes_by_field_and_rule(
    client: AsyncTestClient,
    database_url: str,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    for rps in (50, 80, 150, 300):  # two below 100 RPS change family, two do not
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["traffic"]["peak_rps"] = rps
        assert (await client.post("/v1/recommendations", json=body)).status_code == 201
    candidate = compile_ruleset(load_ruleset(_candidate(tmp_path)))
    engine = create_engine(Settings(database_url=database_url))
    try:
        analysis = ImpactAnalysis(candidate)
        await analysis.add_stream(stream_history(engine, batch_size=2))
    finally:
        await engine.dispose()
    report = analysis.report()
    assert (report.decisions, report.changed, report.unchanged, report.refused) == (4, 2, 2, 0)
    assert report.changed_by_field["family"] == 2
    assert report.top_transitions[0].field == "family"
    assert (report.top_transitions[0].before, report.top_transitions[0].after) == ("c", "m")
    assert report.rules_responsible["family:general-purpose"] == 2
    assert report.cost_delta_usd_per_hour != 0
    assert len(report.sample) == 2
    markdown = render_markdown(report)
    assert "**2 would change**" in markdown and "family: c → m | 2" in markdown


async def test_unchanged_ruleset_has_no_impact(client: AsyncTestClient, database_url: str) -> None:  # type: ignore[type-arg]
    assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201
    engine = create_engine(Settings(database_url=database_url))
    try:
        analysis = ImpactAnalysis(compile_ruleset(load_ruleset(ROOT / "rules")))
        await analysis.add_stream(stream_history(engine))
    finally:
        await engine.dispose()
    report = analysis.report()
    assert (report.decisions, report.changed, report.cost_delta_usd_per_hour) == (1, 0, 0.0)
    assert (report.engine_version, report.other_engine, report.changed_by_engine) == (__version__, 0, 0)
    assert "the engine that recorded every one: every change comes from the candidate rules" in render_markdown(report)


def test_diff_names_the_changed_condition(tmp_path: Path) -> None:
    diff = diff_rulesets(load_ruleset(ROOT / "rules"), load_ruleset(_candidate(tmp_path)))
    assert [(c.table, c.rule_id, c.kind) for c in diff.rules] == [("family", "cpu-classic-ml", "changed")]
    assert diff.rules[0].fields == {"when.traffic.peak_rps.gte": (None, 100.0)}
    assert diff.catalog == []


def test_diff_reports_moves_in_first_hit_tables_and_catalog_changes(tmp_path: Path) -> None:
    target = tmp_path / "moved"
    shutil.copytree(ROOT / "rules", target)
    scaling = target / "tables" / "scaling.yaml"
    text = scaling.read_text()
    head, rest = text.split("  - id: periodic-scheduled", 1)
    first, second = rest.split("  - id: periodic-without-windows", 1)
    scaling.write_text(
        head + "  - id: periodic-without-windows" + second.rstrip("\n") + "\n  - id: periodic-scheduled" + first
    )
    catalog = target / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("usd_per_hour: 0.102,", "usd_per_hour: 0.11,", 1))
    diff = diff_rulesets(load_ruleset(ROOT / "rules"), load_ruleset(target))
    kinds = {(c.rule_id, c.kind) for c in diff.rules}
    assert ("periodic-scheduled", "moved") in kinds
    assert [(c.rule_id, c.fields) for c in diff.catalog] == [("ml.c5.large", {"usd_per_hour": (0.102, 0.11)})]


def test_cli_diff(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["rules", "diff", str(ROOT / "rules"), str(_candidate(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "changed  family/cpu-classic-ml" in result.output


def test_fast_field_scan_agrees_with_a_full_decode() -> None:
    """Impact replay reads multi_az and usd_per_hour by scanning; it must equal decoding the answer."""
    import msgspec
    from profiles import profile

    from service.engine import evaluate
    from service.services.impact import stored_fields

    ruleset = compile_ruleset(load_ruleset(ROOT / "rules"))
    for sla in (0.95, 0.99, 0.999, 0.9999):
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["sla"]["availability"] = sla
        rec = evaluate(profile(body), ruleset)
        text = msgspec.json.encode(rec).decode()
        assert stored_fields(text) == (rec.availability.multi_az, rec.cost.usd_per_hour)
    # Anything not in the canonical layout still works, through the full decode.
    spaced = msgspec.json.format(msgspec.json.encode(rec), indent=1).decode()
    assert stored_fields(spaced) == (rec.availability.multi_az, rec.cost.usd_per_hour)


async def test_impact_over_the_api(client: AsyncTestClient, tmp_path: Path) -> None:  # type: ignore[type-arg]
    for rps in (50, 150):
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["traffic"]["peak_rps"] = rps
        assert (await client.post("/v1/recommendations", json=body)).status_code == 201
    files = dict(load_ruleset(_candidate(tmp_path)).files)
    response = await client.post("/v1/rulesets/impact", json={"files": files, "sample_size": 5})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["decisions"], report["changed"]) == (2, 1)
    assert report["changed_by_field"] == {"family": 1, "instance_type": 1}
    assert report["candidate_version"] == "2027.1.0"
    files["tables/family.yaml"] = files["tables/family.yaml"].replace("because:", "becuase:", 1)
    refused = await client.post("/v1/rulesets/impact", json={"files": files})
    assert refused.status_code == 422
    assert any("candidate/tables/family.yaml:" in e["message"] for e in refused.json()["errors"])


async def test_impact_counts_engine_changes_apart_from_rule_changes(
    client: AsyncTestClient,  # type: ignore[type-arg]
    database_url: str,
    tmp_path: Path,
) -> None:
    """Besides two decisions of this engine (50 RPS: the candidate moves it to M; 150 RPS: unchanged), three as
    other engines recorded them (through the repository): one whose stored instance count this engine no longer
    gives under the same ruleset (the engine's change), one like it at 50 RPS (the engine's and the rules'), one
    from before versions were kept that this engine answers the same."""
    ids = {}
    for rps in (50, 150):
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["traffic"]["peak_rps"] = rps
        answer = await client.post("/v1/recommendations", json=body)
        assert answer.status_code == 201, answer.text
        ids[rps] = answer.json()["decision_id"]
    answers = {rps: (await client.get(f"/v1/decisions/{ids[rps]}")).json()["recommendation"] for rps in ids}
    by_engine = await record_copy(
        database_url, ids[150], engine_version="0.1.0", instances=answers[150]["capacity"]["instances"] + 3
    )
    by_both = await record_copy(
        database_url, ids[50], engine_version="0.1.0", instances=answers[50]["capacity"]["instances"] + 3
    )
    await record_copy(database_url, ids[150], engine_version=None)

    files = dict(load_ruleset(_candidate(tmp_path)).files)
    response = await client.post("/v1/rulesets/impact", json={"files": files})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["decisions"], report["changed"], report["unchanged"]) == (5, 3, 2)
    assert report["engine_version"] == __version__
    assert (report["other_engine"], report["other_engine_versions"]) == (3, {"0.1.0": 2, "unrecorded": 1})
    causes = (report["changed_by_rules"], report["changed_by_engine"], report["changed_by_engine_and_rules"])
    assert causes == (1, 1, 1)
    assert report["engine_changed_by_field"] == {"instances": 2}
    sample = {c["decision_id"]: c for c in report["sample"]}
    assert (sample[by_engine]["cause"], sample[by_engine]["rules"], sample[by_engine]["engine_version"]) == (
        "engine",
        [],
        "0.1.0",
    )
    assert sample[by_both]["cause"] == "engine_and_rules"
    assert "family:general-purpose" in sample[by_both]["rules"]
    assert sample[ids[50]]["cause"] == "rules" and sample[ids[50]]["engine_version"] == __version__
    assert report["rules_responsible"]["family:general-purpose"] == 2  # not for the engine's instance counts

    cli_report, markdown = await _cli_impact(database_url, _candidate(tmp_path))
    assert {k: v for k, v in cli_report.items() if k != "sample"} == {k: v for k, v in report.items() if k != "sample"}
    assert (
        f"Engine {__version__} replayed them; 3 were recorded by another engine (0.1.0: 2, not recorded: 1)" in markdown
    )
    assert "**1 because of the candidate rules**, **1 only because the engine changed**" in markdown
    assert f"- `{by_engine}`: instances " in markdown and "(engine; recorded by engine 0.1.0)" in markdown
    assert "| instances | 2 | 2 |" in markdown


async def _cli_impact(database_url: str, candidate: Path) -> tuple[dict[str, Any], str]:
    """`advisor rules impact` on ``database_url``: its JSON report, and its markdown one."""
    get_settings.cache_clear()
    try:
        runner = CliRunner(env={"ADVISOR_DATABASE_URL": database_url})
        args = ["rules", "impact", "--candidate", str(candidate)]
        as_json = await asyncio.to_thread(runner.invoke, main, [*args, "--format", "json"])
        get_settings.cache_clear()
        as_markdown = await asyncio.to_thread(runner.invoke, main, args)
    finally:
        get_settings.cache_clear()
    assert as_json.exit_code == 0, as_json.output
    assert as_markdown.exit_code == 0, as_markdown.output
    return json.loads(as_json.stdout), as_markdown.stdout
