"""``advisor audit``: check the audit trail's hash chains, archive old months."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["audit"]

_ANCHOR = re.compile(r"^(?:(\d+):)?(\d+):([0-9a-f]{64})$")


@click.group()
def audit() -> None:
    """The audit trail of decisions."""


@audit.command("verify")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Rows fetched per round trip while walking the chain.",
)
@click.option(
    "--anchor",
    metavar="[CHAIN:]SEQ:HASH",
    default=None,
    help="A chain head recorded earlier (kept outside the database; CHAIN defaults to 1): that seq of that chain "
    "must still carry that hash, which also catches a chain rewritten from scratch.",
)
@click.option(
    "--anchors-from",
    "anchors_from",
    type=click.File("r", encoding="utf-8", errors="replace"),
    metavar="LOGFILE",
    default=None,
    help="A JSON-lines log of the service (`-`: stdin): every `chain head` line the audit writers logged (every "
    "ADVISOR_AUDIT_ANCHOR_EVERY_ROWS decisions or ADVISOR_AUDIT_ANCHOR_EVERY_S seconds, per worker) and every "
    "`audit checkpoint` line is checked against the stored rows and checkpoints; other lines are ignored. "
    "Catches history rewritten and re-hashed, or a tail deleted, "
    "by someone able to move the chain head (the database owner). Decisions after the newest anchor in the log are "
    "covered by no anchor.",
)
@click.option(
    "--archives",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The directory `advisor audit archive` wrote to: the archived months' rows are walked with the live ones "
    "as one chain per chain number, each file checked against the SHA-256 recorded for it. Without it, archived "
    "months are taken as their manifests in the database record them.",
)
def verify(batch_size: int, anchor: str | None, anchors_from: TextIO | None, archives: Path | None) -> None:
    """Walk every chain of decisions of ADVISOR_DATABASE_URL in seq order and check the hash chains.

    Every worker appends to a chain of its own; checkpoints bind their heads together. Prints `ok: N decisions,
    chain head <hash>` (one chain) or `ok: N decisions in K chains, heads CHAIN:SEQ:HASH, ...` (exit 0; with
    checkpoints and anchors, how many were checked), or the first broken link (exit 1): a changed row, a deleted
    or inserted one, a row moved between chains, a deleted or appended tail, a tail cut below a checkpoint, a
    missing or changed checkpoint, a row whose hash differs from an anchor, an anchor beyond the last row. Without
    anchors this proves the rows agree with each other, with the head rows and with the checkpoints, which someone
    with the database owner's rights can rewrite together; anchors kept outside the database prove the history up
    to the newest of them. Exit 2 when the database cannot be read (a missing one is never created), or LOGFILE
    holds no `chain head` line.
    """
    from service.db.chain import ChainHead
    from service.db.readonly import DatabaseNotReady, existing_database, one_line
    from service.services.audit import ChainReport, read_anchors, verify_chain
    from service.settings import get_settings

    expected: ChainHead | None = None
    if anchor is not None:
        match = _ANCHOR.match(anchor.strip().lower())
        if match is None:
            raise click.BadParameter(
                "expected [CHAIN:]SEQ:HASH (numbers, colons, 64 hex digits)", param_hint="--anchor"
            )
        expected = ChainHead(int(match[2]), match[3], int(match[1] or 1))
    logged: list[ChainHead] = []
    if anchors_from is not None:
        logged = read_anchors(anchors_from)
        if not logged:
            click.echo(f"error: no `chain head` lines in {anchors_from.name}: nothing to check against", err=True)
            sys.exit(2)

    archive_files = sorted(archives.glob("decisions-*.jsonl.gz")) if archives is not None else []

    async def run() -> ChainReport:
        # Never creates the database: a missing or unmigrated one is DatabaseNotReady.
        async with existing_database(get_settings().database_url) as engine:
            return await verify_chain(
                engine, batch_size=batch_size, anchor=expected, anchors=logged, archives=archive_files
            )

    try:
        report = asyncio.run(run())
    except DatabaseNotReady as exc:
        click.echo(f"error: cannot verify the audit chain: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        click.echo(f"error: cannot verify the audit chain: {one_line(exc)}", err=True)
        sys.exit(2)
    if not report.ok:
        click.echo(f"audit chain BROKEN after {report.decisions} good decision(s); first broken link:", err=True)
        click.echo(str(report.broken), err=True)
        sys.exit(1)
    click.echo(str(report))


@audit.command("archive")
@click.option(
    "--before",
    metavar="YYYY-MM",
    default=None,
    help="Archive every month before this one (at most the current month). Default: keep the last "
    "ADVISOR_AUDIT_ARCHIVE_KEEP_MONTHS months, the current one included.",
)
@click.option(
    "--to",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the archive files (created if missing): decisions-YYYY-MM.jsonl.gz and its manifest.",
)
def archive(before: str | None, directory: Path) -> None:
    """Export whole months of decisions to compressed files, verify the export, then drop the months from the
    database (run as the tables' owner: ADVISOR_DATABASE_URL with the owner's credentials).

    Each month goes to DIR/decisions-YYYY-MM.jsonl.gz (one decision per line, in chain order, with its hashes and
    its exact profile and answer) and DIR/decisions-YYYY-MM.manifest.json (the file's SHA-256, its decisions and
    the runs of each chain it holds). The file is read back and every row's hash checked before the month is
    recorded in audit_archives and dropped; its decisions then answer 410 naming the file. Keep the files (and
    their manifests) where the database owner cannot change them: `advisor audit verify --archives DIR` checks
    them against the SHA-256 the database recorded. Exit 1 if an export fails its check (nothing is dropped).
    """
    from datetime import UTC, datetime

    from service.db.partitions import parse_month
    from service.db.readonly import DatabaseNotReady, existing_database, one_line
    from service.services.audit.archive import ArchivedMonth, ArchiveError, archive_months
    from service.settings import get_settings

    settings = get_settings()
    now = datetime.now(UTC)
    try:
        cutoff = parse_month(before) if before else _months_back(now.year * 100 + now.month, settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--before") from exc
    directory.mkdir(parents=True, exist_ok=True)

    def done(month: ArchivedMonth) -> None:
        click.echo(f"archived {month.file.name}: {month.decisions} decisions, sha256 {month.sha256}")

    async def run() -> list[ArchivedMonth]:
        async with existing_database(settings.database_url) as engine:
            return await archive_months(
                engine, before=cutoff, directory=directory, clock=lambda: datetime.now(UTC), on_month=done
            )

    try:
        archived = asyncio.run(run())
    except ArchiveError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except DatabaseNotReady as exc:
        click.echo(f"error: cannot archive: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        click.echo(f"error: cannot archive: {one_line(exc)}", err=True)
        sys.exit(2)
    total = sum(month.decisions for month in archived)
    click.echo(f"ok: {len(archived)} month(s) archived, {total} decisions, to {directory}")


def _months_back(current: int, settings: Settings) -> int:
    """The first month to keep: ``audit_archive_keep_months`` months, the current one included."""
    year, month = divmod(current, 100)
    index = year * 12 + (month - 1) - (settings.audit_archive_keep_months - 1)
    return (index // 12) * 100 + index % 12 + 1
