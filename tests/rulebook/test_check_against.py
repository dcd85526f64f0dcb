"""`advisor rules check --against BASE`: a ruleset whose files changed since BASE needs a new version."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from candidates import write_candidate
from click.testing import CliRunner, Result

from service.cli import main
from service.rulebook.loader import load_ruleset

SHIPPED_VERSION = load_ruleset(Path(__file__).resolve().parents[2] / "rules").version


def check(directory: Path, against: str | Path) -> Result:
    return CliRunner().invoke(main, ["rules", "check", str(directory), "--against", str(against)])


def test_against_a_directory(tmp_path: Path) -> None:
    base = write_candidate(tmp_path / "base")
    head = write_candidate(tmp_path / "head")

    same = check(head, base)
    assert same.exit_code == 0, same.output
    assert same.stdout.startswith(f"ok: ruleset {SHIPPED_VERSION} ")
    assert same.stdout.rstrip().endswith(f"; unchanged since {base}")

    write_candidate(head, steady_factor="2.0")  # a rule changed, the version did not
    refused = check(head, base)
    assert refused.exit_code == 1
    assert (
        f"error: tables/scaling.yaml changed since {base} but version is still '{SHIPPED_VERSION}': "
        f"bump `version` in {head.as_posix()}/ruleset.yaml"
    ) in refused.stderr

    write_candidate(head, version="2027.1.7", steady_factor="2.0")
    bumped = check(head, base)
    assert bumped.exit_code == 0, bumped.output
    assert bumped.stdout.rstrip().endswith(f"; version {SHIPPED_VERSION} in {base}, 2 file(s) changed")


def test_a_new_table_file_is_a_change(tmp_path: Path) -> None:
    base = write_candidate(tmp_path / "base")
    head = write_candidate(tmp_path / "head")
    scaling = head / "tables" / "scaling.yaml"
    scaling.rename(head / "tables" / "scaling-rules.yaml")
    refused = check(head, base)
    assert refused.exit_code == 1
    assert "tables/scaling-rules.yaml, tables/scaling.yaml changed since" in refused.stderr


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_against_a_git_revision(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    rules = write_candidate(repo / "config" / "rules")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "rules")

    unchanged = check(rules, "HEAD")
    assert unchanged.exit_code == 0, unchanged.output
    assert unchanged.stdout.rstrip().endswith("; unchanged since HEAD")

    write_candidate(rules, steady_factor="2.0")
    refused = check(rules, "HEAD")
    assert refused.exit_code == 1
    assert f"tables/scaling.yaml changed since HEAD but version is still '{SHIPPED_VERSION}'" in refused.stderr

    write_candidate(rules, version="2027.1.7", steady_factor="2.0")
    assert check(rules, "HEAD").exit_code == 0
    _git(repo, "commit", "-q", "-am", "steady load scales further; version 2027.1.7")
    assert check(rules, "HEAD~1").exit_code == 0  # the version changed with the files
    assert check(rules, "main").stdout.rstrip().endswith("; unchanged since main")

    unknown = check(rules, "no-such-branch")
    assert unknown.exit_code == 1
    assert "'no-such-branch' is neither a directory nor a revision of the git repository at" in unknown.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_ruleset_the_revision_did_not_have_is_new(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README").write_text("nothing yet\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "empty")
    rules = write_candidate(repo / "rules")
    result = check(rules, "HEAD")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("; new since HEAD (no ruleset there)")


def test_outside_a_git_repository(tmp_path: Path) -> None:
    rules = write_candidate(tmp_path / "rules")
    result = check(rules, "HEAD")
    assert result.exit_code == 1
    assert "'HEAD' is not a directory, and" in result.stderr and "is not in a git repository" in result.stderr
