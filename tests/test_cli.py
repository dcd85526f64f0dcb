"""The `advisor` command line as platform engineers use it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from profiles import WORKED_EXAMPLE

from service.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "lint"


def test_recommend_prints_the_worked_example(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(WORKED_EXAMPLE))
    result = CliRunner().invoke(main, ["recommend", str(profile), "--rules", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["capacity"]["base_instances"] == 11


def test_recommend_reports_an_invalid_profile(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(WORKED_EXAMPLE | {"sla": {"p99_latency_ms": 100}}))
    result = CliRunner().invoke(main, ["recommend", str(profile), "--rules", str(ROOT / "rules")])
    assert result.exit_code == 1
    assert "availability" in result.output


def test_check_passes_on_the_default_rules() -> None:
    result = CliRunner().invoke(main, ["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ruleset ")


def test_check_reports_unreachable_rule_and_gap_with_file_and_line() -> None:
    unreachable = CliRunner().invoke(main, ["rules", "check", str(FIXTURES / "unreachable")])
    assert unreachable.exit_code == 1
    assert "tables/family.yaml:" in unreachable.output and "unreachable" in unreachable.output
    gap = CliRunner().invoke(main, ["rules", "check", str(FIXTURES / "gap")])
    assert gap.exit_code == 1
    assert "tables/family.yaml:" in gap.output and "gap" in gap.output


def test_check_reports_a_schema_error_with_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "clean", rules)
    family = rules / "tables" / "family.yaml"
    family.write_text(family.read_text().replace("because:", "becuase:", 1))
    result = CliRunner().invoke(main, ["rules", "check", str(rules)])
    assert result.exit_code == 1
    assert "tables/family.yaml:" in result.output and "unknown field 'becuase'" in result.output


def test_rules_test_runs_every_case() -> None:
    result = CliRunner().invoke(main, ["rules", "test", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert "0 failed, 0 rule(s) uncovered" in result.output
