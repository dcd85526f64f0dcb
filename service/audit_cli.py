"""``advisor audit``: check the audit trail's hash chain."""

from __future__ import annotations

import asyncio
import re
import sys
from typing import TextIO

import click

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
def verify(batch_size: int, anchor: str | None, anchors_from: TextIO | None) -> None:
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

    async def run() -> ChainReport:
        # Never creates the database: a missing or unmigrated one is DatabaseNotReady.
        async with existing_database(get_settings().database_url) as engine:
            return await verify_chain(engine, batch_size=batch_size, anchor=expected, anchors=logged)

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
