"""`advisor recommend --format text|html`: the report without a server."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from profiles import WORKED_EXAMPLE
from reportread import plotted

from service.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _answer(profile: Path) -> dict[str, object]:
    result = CliRunner().invoke(main, ["recommend", str(profile), "--rules", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.output)
    return answer


def test_text_prints_the_summary_and_the_tables(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(WORKED_EXAMPLE))
    answer = _answer(profile)
    result = CliRunner().invoke(main, ["recommend", str(profile), "--rules", str(ROOT / "rules"), "--format", "text"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "fraud-xgb"
    instance, capacity, cost = answer["instance"], answer["capacity"], answer["cost"]
    assert isinstance(instance, dict) and isinstance(capacity, dict) and isinstance(cost, dict)
    fleet = next(line for line in lines if line.startswith("fleet"))
    assert f"{instance['instance_type']} x {capacity['instances']}" in fleet
    assert f"{cost['usd_per_month_expected']:,.2f} USD expected" in result.output
    for heading in ("Alarms", "Warnings", "Rules that fired"):
        assert heading in lines
    explanation = answer["explanation"]
    assert isinstance(explanation, list)
    for entry in explanation:
        assert any(entry["rule_id"] in line and ".yaml:" in line for line in lines), entry["rule_id"]


def test_html_writes_the_report_as_one_file(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(WORKED_EXAMPLE))
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    result = CliRunner().invoke(
        main,
        ["recommend", str(profile), "--rules", str(ROOT / "rules"), "--format", "html", "--output", str(target)],
    )
    assert result.exit_code == 0, result.output
    html = target.read_text()
    assert set(plotted(html)) == {"capacity", "scaling", "az", "cost"}
    assert "<style>" in html and "<link" not in html, "the file carries its stylesheet"
    assert "<script" not in html
    cost = _answer(profile)["cost"]
    assert isinstance(cost, dict)
    assert float(plotted(html)["cost"].of("plan")[0]["usd-per-month"]) == cost["usd_per_month_expected"]
