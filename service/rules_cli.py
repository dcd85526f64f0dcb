"""`advisor rules diff` and `advisor rules impact`: review a rule change before it lands."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

if TYPE_CHECKING:
    from service.activation import ActivationResult
    from service.engine import CompiledRuleset
    from service.impact import ImpactReport
    from service.rulebook.loader import LoadedRuleset

__all__ = ["activate_command", "diff_command", "impact_command"]


async def _stored(version: str) -> LoadedRuleset:
    from service.db.engine import create_engine
    from service.db.repository import AuditRepository
    from service.rulebook.loader import parse_ruleset
    from service.settings import get_settings

    engine = create_engine(get_settings())
    try:
        async with engine.connect() as conn:
            row = await AuditRepository(conn).get_ruleset_by_version(version)
    finally:
        await engine.dispose()
    if row is None:
        raise click.ClickException(f"'{version}' is neither a directory nor a stored ruleset version")
    return parse_ruleset(row.files, label=f"stored:{version}")


def _load(source: str) -> LoadedRuleset:
    """A ruleset from a directory, or a stored version from ADVISOR_DATABASE_URL."""
    from service.rulebook.loader import RulesetInvalid, load_ruleset

    try:
        if Path(source).is_dir():
            return load_ruleset(source)
        return asyncio.run(_stored(source))
    except RulesetInvalid as exc:
        raise click.ClickException(f"{source} is invalid:\n{exc}") from exc


@click.command("diff")
@click.argument("old")
@click.argument("new")
def diff_command(old: str, new: str) -> None:
    """Rules added, removed, changed and moved between OLD and NEW (directories or stored versions)."""
    from service.rulebook.diff import diff_rulesets, render_diff

    click.echo(render_diff(diff_rulesets(_load(old), _load(new))), nl=False)


@click.command("impact")
@click.option("--candidate", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), help="UTC.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many decisions, oldest first.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
def impact_command(candidate: Path, since: datetime | None, limit: int | None, fmt: str) -> None:
    """Replay the audited profiles under the CANDIDATE ruleset and report what would change.

    Changes that come from the engine (decisions recorded by another advisor release, whose own ruleset this engine
    already answers differently) are counted apart from those that come from the candidate rules."""
    from service.engine import compile_ruleset
    from service.rulebook.loader import RulesetInvalid, load_ruleset

    try:
        compiled = compile_ruleset(load_ruleset(candidate))
    except RulesetInvalid as exc:
        raise click.ClickException(f"candidate {candidate} is invalid:\n{exc}") from exc
    report = asyncio.run(_impact(compiled, since, limit))
    if fmt == "json":
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n")
    else:
        from service.impact import render_markdown

        sys.stdout.write(render_markdown(report))


async def _impact(compiled: CompiledRuleset, since: datetime | None, limit: int | None) -> ImpactReport:
    from datetime import UTC

    from service.db.engine import create_engine
    from service.db.history import stream_history
    from service.impact import ImpactAnalysis
    from service.registry import RulesetRegistry
    from service.settings import get_settings

    engine = create_engine(get_settings())
    try:
        # Decisions another engine version recorded are replayed under their own stored ruleset too.
        analysis = ImpactAnalysis(compiled, own_rulesets=RulesetRegistry(engine))
        aware = since.replace(tzinfo=UTC) if since is not None else None
        await analysis.add_stream(stream_history(engine, since=aware, limit=limit))
        return analysis.report()
    finally:
        await engine.dispose()


def _default_rules_dir() -> Path:
    from service.settings import get_settings

    return get_settings().rules_dir


@click.command("activate")
@click.argument("directory", required=False, default=_default_rules_dir, type=click.Path(path_type=Path))
def activate_command(directory: Path) -> None:
    """Validate, lint and activate the ruleset in DIRECTORY (default: ADVISOR_RULES_DIR) on every running worker
    (ADVISOR_DATABASE_URL)."""
    from service.rulebook.loader import RulesetInvalid, load_ruleset

    try:
        loaded = load_ruleset(directory)
        result = asyncio.run(_activate(loaded))
    except RulesetInvalid as exc:
        click.echo(str(exc), err=True)
        raise click.ClickException(f"{len(exc.errors)} error(s); the active ruleset is unchanged") from exc
    for warning in result.warnings:
        click.echo(warning, err=True)
    state = "activated" if result.changed else "already active:"
    click.echo(f"{state} ruleset {result.active.version} sha256 {result.active.sha256}")


async def _activate(loaded: LoadedRuleset) -> ActivationResult:
    import getpass
    import socket

    from service.activation import Activator
    from service.db.engine import create_engine
    from service.registry import RulesetRegistry
    from service.settings import get_settings

    engine = create_engine(get_settings())
    try:
        activator = Activator(engine, RulesetRegistry(engine))
        return await activator.activate(loaded, by=f"cli:{getpass.getuser()}@{socket.gethostname()}")
    finally:
        await engine.dispose()
