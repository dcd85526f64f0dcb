"""`advisor export cloudformation`: a profile answered here, or an audited decision, as a template."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from cfntemplates import check_against_answer, lint_errors, parsed
from click.testing import CliRunner
from profiles import WORKED_EXAMPLE

from service.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["export", "cloudformation", *args])
    return result.exit_code, result.output


def test_a_profile_exports_to_the_template_of_its_answer(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(WORKED_EXAMPLE))
    code, text = _invoke(str(profile), "--rules", str(ROOT / "rules"))
    assert code == 0, text
    assert lint_errors(text) == []
    answer = json.loads(CliRunner().invoke(main, ["recommend", str(profile), "--rules", str(ROOT / "rules")]).output)
    template = parsed(text)
    check_against_answer(template, answer)
    assert template["Metadata"]["Advisor"]["DecisionId"].startswith("none")


def test_a_batch_profile_prints_the_transform_job_request(tmp_path: Path) -> None:
    body = copy.deepcopy(WORKED_EXAMPLE)
    body["sla"] |= {"delivery": "batch", "p99_latency_ms": 3_600_000}
    profile = tmp_path / "batch.json"
    profile.write_text(json.dumps(body))
    code, text = _invoke(str(profile), "--rules", str(ROOT / "rules"))
    assert code == 0, text
    exported = parsed(text)
    assert "no resource" in exported["Note"] and exported["CreateTransformJob"]["TransformJobName"]


def test_an_unknown_decision_or_a_missing_database_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/missing.db")
    from service.settings import get_settings

    get_settings.cache_clear()
    try:
        code, text = _invoke("0190a1b2-0000-7000-8000-000000000000")
    finally:
        get_settings.cache_clear()
    assert code == 2 and "cannot read the audit trail" in text
