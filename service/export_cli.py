"""``advisor export cloudformation``: an audited decision, or a profile answered here, as a CloudFormation template."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
import msgspec

if TYPE_CHECKING:
    from service.export.cloudformation import TransformJobExport

__all__ = ["export"]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _default_rules_dir() -> Path:
    from service.settings import get_settings

    return get_settings().rules_dir


@click.group()
def export() -> None:
    """An answer in another format."""


@export.command("cloudformation")
@click.argument("source", metavar="DECISION_ID_OR_PROFILE")
@click.option(
    "--rules",
    "rules_dir",
    default=_default_rules_dir,
    type=click.Path(path_type=Path),
    help="With a profile: the ruleset directory. Default: ADVISOR_RULES_DIR (the ruleset shipped with the package).",
)
def cloudformation(source: str, rules_dir: Path) -> None:
    """Print the CloudFormation template (YAML) of an answer.

    DECISION_ID_OR_PROFILE is an audited decision's id (read from ADVISOR_DATABASE_URL, its stored answer exported
    as it was given) or a profile (a JSON file, or - for stdin) answered here with no server or database. For batch
    transform, which CloudFormation has no resource for, prints the CreateTransformJob request (YAML) instead.
    Exit 1: unknown decision, rejected profile, or an answer that lacks what the template needs; 2: the database
    cannot be read.
    """
    from service.services.export import ExportNotPossible, as_yaml

    try:
        result = _from_decision(source) if _UUID.match(source) else _from_profile(source, rules_dir)
    except ExportNotPossible as exc:
        _fail(f"cannot export: {exc.reason}")
    click.echo(as_yaml(result), nl=False)


def _from_decision(decision_id: str) -> str | TransformJobExport:
    from service.db.readonly import DatabaseNotReady, existing_database, one_line
    from service.services.audit import AuditReader
    from service.services.export import export_decision
    from service.services.replay import DecisionNotFound
    from service.settings import get_settings

    async def run() -> str | TransformJobExport:
        async with existing_database(get_settings().database_url) as engine:
            return await export_decision(AuditReader(engine), uuid.UUID(decision_id))

    try:
        return asyncio.run(run())
    except DecisionNotFound:
        _fail(f"no decision has id {decision_id}")
    except DatabaseNotReady as exc:
        _fail(f"cannot read the audit trail: {exc}", 2)
    except OSError as exc:
        _fail(f"cannot read the audit trail: {one_line(exc)}", 2)


def _from_profile(path: str, rules_dir: Path) -> str | TransformJobExport:
    from service.contract import WorkloadProfile
    from service.engine import ProfileRejected, compile_ruleset, evaluate
    from service.rulebook.loader import RulesetInvalid, load_ruleset
    from service.services.export import export_recommendation

    try:
        ruleset = compile_ruleset(load_ruleset(rules_dir))
    except RulesetInvalid as exc:
        _fail(f"ruleset {rules_dir} is invalid:\n{exc}")
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    try:
        profile = msgspec.json.decode(data, type=WorkloadProfile)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        _fail(f"invalid profile: {exc}")
    try:
        return export_recommendation(evaluate(profile, ruleset))
    except ProfileRejected as exc:
        _fail(f"profile rejected ({exc.code}): {exc.message}")
