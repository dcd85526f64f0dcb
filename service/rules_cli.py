"""`advisor rules check`, `diff`, `impact` and `activate`: review a rule change before it lands, then activate it.

The commands that read the audit store never create it: a missing or unmigrated database is one line and exit 2.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
import msgspec

if TYPE_CHECKING:
    from service.rulebook.loader import LoadedRuleset
    from service.services.activation import ActivationResult
    from service.services.impact import ImpactReport

__all__ = ["activate_command", "check_command", "diff_command", "impact_command"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _default_rules_dir() -> Path:
    from service.settings import get_settings

    return get_settings().rules_dir


def _fail(message: str, *, status: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


# --------------------------------------------------------------------------------------------------- check


@click.command("check")
@click.argument("directory", required=False, default=_default_rules_dir, type=click.Path(path_type=Path))
@click.option(
    "--against",
    metavar="BASE",
    help="The ruleset before the change: a directory, or a git revision of the repository holding DIRECTORY "
    "(e.g. origin/main). Fails when the files changed and `version` did not.",
)
def check_command(directory: Path, against: str | None) -> None:
    """Validate and lint the ruleset in DIRECTORY (default: ADVISOR_RULES_DIR): schema errors, unreachable rules,
    gaps; with --against, also that a changed ruleset has a new version."""
    from service.rulebook.lint import lint_ruleset
    from service.rulebook.loader import RulesetInvalid, load_ruleset

    try:
        ruleset = load_ruleset(directory)
    except RulesetInvalid as exc:
        click.echo(str(exc), err=True)
        _fail(f"{len(exc.errors)} error(s); the ruleset cannot be activated")
    findings = lint_ruleset(ruleset)
    for finding in findings:
        click.echo(str(finding), err=True)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        _fail(f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    compared = _compare_versions(ruleset, directory, against) if against is not None else ""
    rule_count = sum(len(t.rules) for t in ruleset.tables.values())
    click.echo(
        f"ok: ruleset {ruleset.version} sha256 {ruleset.sha256}: {len(ruleset.tables)} tables, "
        f"{rule_count} rules, {len(ruleset.catalog.instances)} instance types, {len(findings)} warning(s){compared}"
    )


def _compare_versions(ruleset: LoadedRuleset, directory: Path, against: str) -> str:
    """``; <how it compares with BASE>``, or fail: files changed and the version did not."""
    from service.rulebook.loader import RulesetInvalid, ruleset_files, yaml_with_lines

    base_dir = Path(against)
    try:
        base = ruleset_files(base_dir) if base_dir.is_dir() else _files_at_revision(directory, against)
    except RulesetInvalid as exc:
        _fail(f"the ruleset in {against} cannot be read: {exc}")
    if base is None:
        return f"; new since {against} (no ruleset there)"
    changed = sorted(rel for rel in base.keys() | ruleset.files.keys() if base.get(rel) != ruleset.files.get(rel))
    if not changed:
        return f"; unchanged since {against}"
    try:
        manifest, _ = yaml_with_lines(base.get("ruleset.yaml", ""), f"{against}/ruleset.yaml")
    except RulesetInvalid:
        manifest = None
    base_version = manifest.get("version") if isinstance(manifest, dict) else None
    if base_version == ruleset.version:
        _fail(
            f"{', '.join(changed)} changed since {against} but version is still '{ruleset.version}': "
            f"bump `version` in {directory.as_posix()}/ruleset.yaml (one version names one ruleset)"
        )
    return f"; version {base_version} in {against}, {len(changed)} file(s) changed"


def _files_at_revision(directory: Path, revision: str) -> dict[str, str] | None:
    """The ruleset files of DIRECTORY as git revision REVISION holds them; None if it holds none there."""
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top is None:
        _fail(f"'{revision}' is not a directory, and {directory} is not in a git repository")
    prefix = _git(directory, "rev-parse", "--show-prefix") or ""
    if _git(directory, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}") is None:
        _fail(f"'{revision}' is neither a directory nor a revision of the git repository at {top}")
    listed = _git(Path(top), "ls-tree", "--name-only", "-r", revision, "--", prefix) or ""
    wanted = {"ruleset.yaml", "catalog.yaml", "models.yaml"}
    paths = [
        path
        for path in listed.splitlines()
        if (rel := path.removeprefix(prefix)) in wanted or re.fullmatch(r"tables/[^/]+\.yaml", rel)
    ]
    if not paths:
        return None
    files: dict[str, str] = {}
    for path in paths:
        text = _git(Path(top), "cat-file", "blob", f"{revision}:{path}", strip=False)
        files[path.removeprefix(prefix)] = (text or "").replace("\r\n", "\n")
    return files


def _git(cwd: Path, *args: str, strip: bool = True) -> str | None:
    """git's standard output, or None if it fails (no repository, unknown revision) or git is not installed."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if done.returncode != 0:
        return None
    out = done.stdout.decode("utf-8")
    return out.strip() if strip else out


# --------------------------------------------------------------------------------------------------- diff


async def _stored(source: str) -> LoadedRuleset:
    from service.db.readonly import existing_database
    from service.db.repository import AuditRepository
    from service.rulebook.loader import parse_ruleset
    from service.settings import get_settings

    url = get_settings().database_url
    async with existing_database(url, tables=("rulesets",)) as engine, engine.connect() as conn:
        repo = AuditRepository(conn)
        row = await (repo.get_ruleset(source) if _SHA256.match(source) else repo.get_ruleset_by_version(source))
    if row is None:
        _fail(f"'{source}' is neither a directory nor a stored ruleset version or sha256")
    return parse_ruleset(row.files, label=f"stored:{row.version}")


def _load(source: str) -> LoadedRuleset:
    """A ruleset from a directory, or a stored version (or sha256) from ADVISOR_DATABASE_URL."""
    from service.db.readonly import DatabaseNotReady
    from service.db.repository import AmbiguousRulesetVersion
    from service.rulebook.loader import RulesetInvalid, load_ruleset

    try:
        if Path(source).is_dir():
            return load_ruleset(source)
        return asyncio.run(_stored(source))
    except RulesetInvalid as exc:
        _fail(f"{source} is invalid:\n{exc}")
    except AmbiguousRulesetVersion as exc:
        _fail(f"{exc}: name one by its sha256")
    except DatabaseNotReady as exc:
        _fail(f"'{source}' is not a directory, and the stored rulesets cannot be read: {exc}", status=2)


@click.command("diff")
@click.argument("old")
@click.argument("new")
def diff_command(old: str, new: str) -> None:
    """Rules added, removed, changed and moved between OLD and NEW (directories, stored versions or sha256s)."""
    from service.rulebook.diff import diff_rulesets, render_diff

    click.echo(render_diff(diff_rulesets(_load(old), _load(new))), nl=False)


# --------------------------------------------------------------------------------------------------- impact


@click.command("impact")
@click.option("--candidate", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), help="UTC.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many decisions, oldest first.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes replaying ranges of the history side by side (default: the cores this may use). The "
    "report is the same for any number.",
)
def impact_command(candidate: Path, since: datetime | None, limit: int | None, fmt: str, jobs: int | None) -> None:
    """Replay the audited profiles of ADVISOR_DATABASE_URL under the CANDIDATE ruleset and report what would change.

    Changes that come from the engine (decisions recorded by another advisor release, whose own ruleset this engine
    already answers differently) are counted apart from those that come from the candidate rules. Progress goes to
    stderr (a bar on a terminal, else one summary line), the report to stdout. Exit 2 when the database cannot be
    read (it is never created)."""
    from datetime import UTC

    from sqlalchemy.exc import SQLAlchemyError

    from service.db.readonly import DatabaseNotReady, one_line, shown_url
    from service.engine import compile_ruleset
    from service.progress import progress
    from service.rulebook.loader import RulesetInvalid, load_ruleset
    from service.services.impact_parallel import default_jobs, run_impact
    from service.settings import get_settings

    try:
        loaded = load_ruleset(candidate)
        compiled = compile_ruleset(loaded)
    except RulesetInvalid as exc:
        raise click.ClickException(f"candidate {candidate} is invalid:\n{exc}") from exc
    database_url = get_settings().database_url
    aware = since.replace(tzinfo=UTC) if since is not None else None
    try:
        asyncio.run(_check_database(database_url))
        with progress("impact", unit="decisions") as bar:
            report = run_impact(
                database_url, compiled, loaded.files, since=aware, limit=limit, jobs=jobs or default_jobs(), bar=bar
            )
    except DatabaseNotReady as exc:
        _fail(str(exc), status=2)
    except SQLAlchemyError as exc:  # e.g. a schema that lacks a later migration
        _fail(f"cannot read {shown_url(database_url)}: {one_line(exc)} (`advisor db upgrade` migrates it)", status=2)
    _print_impact(report, fmt)


def _print_impact(report: ImpactReport, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n")
    else:
        from service.services.impact import render_markdown

        sys.stdout.write(render_markdown(report))


async def _check_database(database_url: str) -> None:
    """Raise DatabaseNotReady unless ``database_url`` holds a migrated audit store."""
    from service.db.readonly import existing_database

    async with existing_database(database_url):
        pass


# --------------------------------------------------------------------------------------------------- activate


@click.command("activate")
@click.argument("directory", required=False, default=_default_rules_dir, type=click.Path(path_type=Path))
def activate_command(directory: Path) -> None:
    """Validate, lint and activate the ruleset in DIRECTORY (default: ADVISOR_RULES_DIR) on every running worker
    (ADVISOR_DATABASE_URL). Refused when another ruleset is stored under its version."""
    from service.rulebook.loader import RulesetInvalid, load_ruleset
    from service.services.activation import RulesetVersionConflict

    try:
        loaded = load_ruleset(directory)
        result = asyncio.run(_activate(loaded))
    except RulesetInvalid as exc:
        click.echo(str(exc), err=True)
        _fail(f"{len(exc.errors)} error(s); the active ruleset is unchanged")
    except RulesetVersionConflict as exc:
        _fail(f"{exc}; the active ruleset is unchanged")
    for warning in result.warnings:
        click.echo(warning, err=True)
    state = "activated" if result.changed else "already active:"
    click.echo(f"{state} ruleset {result.active.version} sha256 {result.active.sha256}")


async def _activate(loaded: LoadedRuleset) -> ActivationResult:
    import getpass
    import socket

    from service.db.connection import create_engine
    from service.services.activation import Activator
    from service.services.registry import RulesetRegistry
    from service.settings import get_settings

    engine = create_engine(get_settings())
    try:
        activator = Activator(engine, RulesetRegistry(engine))
        return await activator.activate(loaded, by=f"cli:{getpass.getuser()}@{socket.gethostname()}")
    finally:
        await engine.dispose()
