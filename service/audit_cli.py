"""``advisor audit``: check the audit trail's hash chains, archive old months."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from service.db.chain import ChainHead
    from service.services.audit import ChainReport
    from service.services.audit.external import ExternalCopies
    from service.services.audit.signing import TrustedKeys
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
@click.option(
    "--checkpoints",
    "checkpoint_sources",
    multiple=True,
    metavar="SOURCE",
    help="The witness the service copies its signed checkpoints to (ADVISOR_AUDIT_CHECKPOINT_WITNESS): a file of "
    "JSON lines or s3://bucket/prefix (every version of every object is read; AWS credentials from the usual "
    "places). Repeatable (e.g. the old and the new witness). The copies are the trust root: each must be signed by "
    "a --public-key, they must link without a hole, and the stored checkpoints and rows must match them. Catches a "
    "truncated tail, a rewritten row, a history re-hashed and signed again, a forged or a missing checkpoint; "
    "decisions after the newest copy are covered by none (the output says how many).",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="PEM",
    help="A trusted Ed25519 public key of the checkpoints (`openssl pkey -in key.pem -pubout`); repeat it for every "
    "key in use since the oldest copy (key rotation). Needed with --checkpoints.",
)
def verify(
    batch_size: int,
    anchor: str | None,
    anchors_from: TextIO | None,
    checkpoint_sources: tuple[str, ...],
    public_keys: tuple[Path, ...],
    archives: Path | None,
) -> None:
    """Walk every chain of decisions of ADVISOR_DATABASE_URL in seq order and check the hash chains.

    Every worker appends to a chain of its own; checkpoints bind their heads together. Prints `ok: N decisions,
    chain head <hash>` (one chain) or `ok: N decisions in K chains, heads CHAIN:SEQ:HASH, ...` (exit 0; with
    checkpoints and anchors, how many were checked), or the first broken link (exit 1): a changed row, a deleted
    or inserted one, a row moved between chains, a deleted or appended tail, a tail cut below a checkpoint, a
    missing or changed checkpoint, a row whose hash differs from an anchor, an anchor beyond the last row. Without
    anchors this proves the rows agree with each other, with the head rows and with the checkpoints, which someone
    with the database owner's rights can rewrite together; anchors kept outside the database prove the history up
    to the newest of them; signed checkpoint copies on a witness (--checkpoints) prove it up to the newest copy, and
    the output states that window. Exit 2 when the database cannot be read (a missing one is never created), LOGFILE
    holds no `chain head` line, or SOURCE no checkpoint copy.
    """
    from service.db.history import count_history
    from service.db.readonly import DatabaseNotReady, existing_database, one_line
    from service.progress import progress
    from service.services.audit import verify_chain
    from service.settings import get_settings

    expected, logged = _given_anchors(anchor, anchors_from)
    external = _external_copies(checkpoint_sources, public_keys) if checkpoint_sources else None
    if external is not None:
        logged.extend(external[0].anchors())

    archive_files = sorted(archives.glob("decisions-*.jsonl.gz")) if archives is not None else []

    async def run() -> tuple[ChainReport, str | None]:
        # Never creates the database: a missing or unmigrated one is DatabaseNotReady.
        async with existing_database(get_settings().database_url) as engine:
            total = await count_history(engine)
            with progress("verify", total=total, unit="decisions") as bar:
                report = await verify_chain(
                    engine,
                    batch_size=batch_size,
                    anchor=expected,
                    anchors=logged,
                    archives=archive_files,
                    on_progress=bar.advance,
                )
            if external is None or not report.ok:
                return report, None
            return report, await _check_stored(engine, report, *external, checkpoint_sources)

    try:
        report, window = asyncio.run(run())
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
    if window is not None and window.startswith("broken: "):
        click.echo(f"audit checkpoints BROKEN against the external copy: {window.removeprefix('broken: ')}", err=True)
        sys.exit(1)
    click.echo(str(report) if window is None else f"{report}; {window}")


def _given_anchors(anchor: str | None, anchors_from: TextIO | None) -> tuple[ChainHead | None, list[ChainHead]]:
    """The head given with --anchor, and those read from --anchors-from (exit 2 if it holds none)."""
    from service.db.chain import ChainHead
    from service.services.audit import read_anchors

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
    return expected, logged


def _external_copies(sources: tuple[str, ...], public_keys: tuple[Path, ...]) -> tuple[ExternalCopies, TrustedKeys]:
    """The copies on the witness, checked on their own (exit 1 if one is forged, 2 if none can be read)."""
    from service.services.audit.external import check_copies
    from service.services.audit.signing import CheckpointKeyError, TrustedKeys, load_public_key
    from service.services.audit.witness import WitnessError, open_witness

    if not public_keys:
        raise click.BadParameter("give the trusted key(s) with --public-key", param_hint="--checkpoints")
    try:
        trusted = TrustedKeys(load_public_key(path) for path in public_keys)
        found = [copy for source in sources for copy in open_witness(source).read_all()]
    except (CheckpointKeyError, WitnessError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if not found:
        click.echo(f"error: no checkpoint copies in {', '.join(sources)}: nothing to check against", err=True)
        sys.exit(2)
    copies = check_copies(found, trusted)
    if copies.problem is not None:
        click.echo(f"audit checkpoints BROKEN in the external copy: {copies.problem}", err=True)
        sys.exit(1)
    return copies, trusted


async def _check_stored(
    engine: AsyncEngine, report: ChainReport, copies: ExternalCopies, trusted: TrustedKeys, sources: tuple[str, ...]
) -> str:
    """The stored checkpoints against the copies: ``broken: <why>``, or the line stating the window."""
    from service.services.audit.external import check_stored, describe, uncovered

    problem, unpublished = await check_stored(engine, copies, trusted)
    if problem is not None:
        return f"broken: {problem}"
    return describe(copies, sources, uncovered(report.heads, copies.newest), unpublished)


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
    from service.progress import progress
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
            with progress("archive", unit="months") as bar:

                def archived(month: ArchivedMonth) -> None:
                    done(month)
                    bar.advance(1)

                return await archive_months(
                    engine, before=cutoff, directory=directory, clock=lambda: datetime.now(UTC), on_month=archived
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
