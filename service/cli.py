"""The ``advisor`` command line: recommend, check and test rules, run the service, migrate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import click
import msgspec

from service.audit_cli import audit
from service.export_cli import export
from service.loadtests_cli import load_tests

if TYPE_CHECKING:
    from service.contract import Recommendation, WorkloadProfile
    from service.engine import CompiledRuleset

__all__ = ["main"]


def _default_rules_dir() -> Path:
    """ADVISOR_RULES_DIR: the ruleset shipped with the package unless set (service/settings.py)."""
    from service.settings import get_settings

    return get_settings().rules_dir


_RULES_DIR = click.argument("directory", required=False, default=_default_rules_dir, type=click.Path(path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Advisor: rule-based recommendations for ML inference infrastructure."""


@main.command()
@click.argument("profile", type=click.File("rb"))
@click.option(
    "--rules",
    "rules_dir",
    default=_default_rules_dir,
    type=click.Path(path_type=Path),
    help="Ruleset directory. Default: ADVISOR_RULES_DIR (the ruleset shipped with the package).",
)
@click.option(
    "--what-if",
    "with_what_if",
    is_flag=True,
    help='Print one JSON object instead: {"recommendation": the recommendation, "what_if": [counterfactuals: '
    "one fewer and one more AZ, target utilisation 0.6 and 0.8, each other family, the newest generation, each "
    "with change, instance_type, instances, usd_per_month_expected, delta_usd_per_month, note], "
    '"not_possible": [counterfactuals the engine refuses or that do not apply, with the reason]}.',
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "text", "html"]),
    default="json",
    show_default=True,
    help="json: the recommendation as the API answers it; text: the summary and tables for a terminal; html: the "
    "report with its charts, as one file (see --output).",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With --format html: the file to write (default: <profile name>.html in the working directory).",
)
def recommend(
    profile: BinaryIO, rules_dir: Path, with_what_if: bool, output_format: str, output_path: Path | None
) -> None:
    """Print the recommendation for PROFILE (a JSON file, or - for stdin). No server, no database."""
    from service.contract import WorkloadProfile
    from service.engine import ProfileRejected, compile_ruleset, evaluate
    from service.engine.whatif import what_if_report
    from service.rulebook.loader import RulesetInvalid, load_ruleset

    try:
        ruleset = compile_ruleset(load_ruleset(rules_dir))
    except RulesetInvalid as exc:
        _fail(f"ruleset {rules_dir} is invalid:\n{exc}")
    try:
        body = msgspec.json.decode(profile.read(), type=WorkloadProfile)
    except msgspec.ValidationError as exc:
        _fail(f"invalid profile: {exc}")
    except msgspec.DecodeError as exc:
        _fail(f"profile is not valid JSON: {exc}")
    try:
        result = evaluate(body, ruleset)
        report = what_if_report(body, ruleset) if with_what_if else None
    except ProfileRejected as exc:
        _fail(f"profile rejected ({exc.code}): {exc.message}")
    if output_format != "json":
        _write_report(body, result, ruleset, rules_dir, output_format, output_path)
        return
    output: object = result
    if report is not None:
        output = {"recommendation": result, "what_if": report.what_if, "not_possible": report.not_possible}
    click.echo(msgspec.json.format(msgspec.json.encode(output), indent=2).decode())


def _write_report(
    profile: WorkloadProfile,
    result: Recommendation,
    ruleset: CompiledRuleset,
    rules_dir: Path,
    output_format: str,
    output_path: Path | None,
) -> None:
    """The report of a recommendation not audited (no decision id, no links): text on stdout, or an HTML file."""
    from service import __version__
    from service.engine.whatif import what_if_report
    from service.report.model import build_report
    from service.report.render import report_html_file, report_text
    from service.rulebook.loader import ruleset_files

    report = what_if_report(profile, ruleset)
    record = {
        "profile": msgspec.to_builtins(profile),
        "recommendation": msgspec.to_builtins(result),
        "engine_version": __version__,  # this release's engine made it
    }
    built = build_report(record, ruleset_files=ruleset_files(rules_dir), what_if=msgspec.to_builtins(report.what_if))
    if output_format == "text":
        click.echo(report_text(built), nl=False)
        return
    target = output_path or Path(f"{profile.name or 'report'}.html")
    target.write_text(report_html_file(built), encoding="utf-8")
    click.echo(f"wrote {target}")


@main.group()
def rules() -> None:
    """Validate, lint and test rule files."""


@rules.command("test")
@_RULES_DIR
@click.option("--tests", "tests_dir", type=click.Path(path_type=Path), help="Default: DIRECTORY/tests.")
def rules_test(directory: Path, tests_dir: Path | None) -> None:
    """Run the rule test cases (DIRECTORY/tests/*.yaml); every rule must be exercised."""
    from service.engine import compile_ruleset
    from service.engine.casetests import run_rule_tests
    from service.rulebook.loader import RulesetInvalid, load_ruleset

    tests_dir = tests_dir or directory / "tests"
    try:
        report = run_rule_tests(compile_ruleset(load_ruleset(directory)), tests_dir)
    except RulesetInvalid as exc:
        _fail(str(exc))
    for result in report.results:
        if result.ok:
            continue
        where = f"{result.file}:{result.line}" if result.line else result.file
        for failure in result.failures:
            click.echo(f"FAIL {where} {result.name}: {failure}", err=True)
    for table, rule_id in report.uncovered:
        click.echo(f"UNCOVERED table '{table}' rule '{rule_id}': no case makes it fire", err=True)
    passed = len(report.results) - len(report.failed)
    summary = f"{passed} passed, {len(report.failed)} failed, {len(report.uncovered)} rule(s) uncovered"
    if not report.ok:
        _fail(summary)
    click.echo(summary)


def _register_review_commands() -> None:
    from service.rules_cli import activate_command, check_command, diff_command, impact_command

    rules.add_command(check_command)
    rules.add_command(activate_command)
    rules.add_command(diff_command)
    rules.add_command(impact_command)


_register_review_commands()


@rules.command("schema")
@click.option("--out", type=click.Path(path_type=Path), default=Path("rules/schema"), show_default=True)
def rules_schema(out: Path) -> None:
    """Write the JSON Schemas of the rule-file formats (for editors)."""
    from service.rulebook.schema import render_schemas

    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_schemas().items():
        (out / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out / name}")


@main.command()
@click.option("--host", default=None, help="Default: ADVISOR_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default: ADVISOR_PORT (8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP service (UI at /docs). Without ADVISOR_API_KEYS it binds loopback only (local mode).

    With several workers, metrics are shared through PROMETHEUS_MULTIPROC_DIR (a temporary directory unless set).
    """
    import uvicorn

    from service.api.auth import serve_refusal
    from service.observability.logging import configure_logging
    from service.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    bind = host or settings.host
    if (refusal := serve_refusal(settings, bind)) is not None:
        click.echo(f"error: {refusal}", err=True)
        sys.exit(2)
    # ADVISOR_MIGRATE_ON_START: each worker migrates (under the migration lock) once the database answers, which
    # it need not do yet: the service starts unready instead of refusing to start (service/startup.py).
    with _prometheus_multiproc_dir(workers):
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=bind,
            port=port or settings.port,
            workers=workers,
            log_level=settings.log_level.lower(),
            log_config=None,  # each worker's app configures logging (structlog); uvicorn's loggers propagate to it
            access_log=False,  # the service writes its own access log line, with request id, caller and decision
            proxy_headers=False,
            server_header=False,
        )


@contextlib.contextmanager
def _prometheus_multiproc_dir(workers: int) -> Iterator[None]:
    """prometheus-client's multiprocess mode for several workers: each writes its metrics to files in
    PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. A directory given is emptied of earlier processes' metric
    files first; without one and with more than one worker, a temporary directory is made and removed at exit."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        own = f"_{os.getpid()}.db"  # this process may have opened its files already
        for stale in path.glob("*_*.db"):  # counter_<pid>.db, gauge_livesum_<pid>.db, histogram_<pid>.db, ...
            if stale.name.startswith(("counter_", "gauge_", "histogram_", "summary_")) and not stale.name.endswith(own):
                stale.unlink()
        yield
        return
    if workers <= 1:
        yield
        return
    made = tempfile.mkdtemp(prefix="advisor-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(made, ignore_errors=True)


@main.group()
def keys() -> None:
    """API keys for ADVISOR_API_KEYS: the service stores only their sha256."""


_KEY_NAME = click.option("--name", required=True, help="Caller name, audited as key:NAME.")
_KEY_SCOPES = click.option(
    "--scopes", required=True, help="Comma-separated, from: decide, audit:read, admin (none implies another)."
)


def _key_entry(name: str, scopes: str, key: str) -> str:
    """The ADVISOR_API_KEYS entry (JSON) for KEY, validated as the service will read it."""
    import pydantic

    from service.api.auth import hash_key
    from service.settings import ApiKey

    try:
        entry = ApiKey.model_validate(
            {"name": name, "sha256": hash_key(key), "scopes": [s.strip() for s in scopes.split(",") if s.strip()]}
        )
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        click.echo(f"error: {problems}", err=True)
        sys.exit(2)
    return entry.model_dump_json()


@keys.command("new")
@_KEY_NAME
@_KEY_SCOPES
def keys_new(name: str, scopes: str) -> None:
    """Make a random key; print it (once) and its ADVISOR_API_KEYS entry."""
    from service.api.auth import new_key

    key = new_key()
    entry = _key_entry(name, scopes, key)
    click.echo(f"key:   {key}")
    click.echo(f"entry: {entry}")
    click.echo(
        "Give the key to the caller (nothing stores it); add the entry to the JSON list in ADVISOR_API_KEYS.", err=True
    )


@keys.command("hash")
@_KEY_NAME
@_KEY_SCOPES
def keys_hash(name: str, scopes: str) -> None:
    """Print the ADVISOR_API_KEYS entry for a key read from stdin (at least 32 random characters)."""
    from service.api.auth import MIN_KEY_LENGTH

    key = str(click.prompt("key", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()).strip()
    if len(key) < MIN_KEY_LENGTH:
        # Only the unsalted sha256 is stored, which is safe for random keys and not for short or chosen ones.
        click.echo(f"error: a key needs at least {MIN_KEY_LENGTH} random characters (`advisor keys new`)", err=True)
        sys.exit(2)
    click.echo(_key_entry(name, scopes, key))


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations to ADVISOR_DATABASE_URL (safe to run from several replicas at once).

    Run it as the role that owns the tables. With ADVISOR_DATABASE_SERVICE_ROLE (Postgres), it then grants that
    role what the running service needs and nothing more, on every run, so new tables are covered: the service
    connects as that role and cannot change, delete or truncate decisions, nor lift the append-only triggers.
    """
    from service.db.migrate import upgrade
    from service.settings import get_settings

    settings = get_settings()
    role = settings.database_service_role
    try:
        asyncio.run(
            upgrade(
                settings.database_url,
                migrations_dir=settings.migrations_dir,
                service_role=role,
                partition_months_ahead=settings.audit_partition_months_ahead,
            )
        )
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo("database is at the latest migration")
    if role is not None:
        click.echo(
            f"granted the service role {role} what the service needs (no UPDATE, DELETE or TRUNCATE of decisions)"
        )


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Take ADVISOR_DATABASE_URL back to migration REVISION (e.g. 0008), as the role that owns the tables: before
    rolling back to a release that needs it. A migration that cannot be undone without losing data refuses
    (exit 2) and changes nothing."""
    from alembic.util import CommandError

    from service.db.migrate import downgrade
    from service.settings import get_settings

    settings = get_settings()
    try:
        asyncio.run(downgrade(settings.database_url, revision, migrations_dir=settings.migrations_dir))
    except (CommandError, RuntimeError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"database is at migration {revision}")


main.add_command(audit)
main.add_command(export)
main.add_command(load_tests)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
