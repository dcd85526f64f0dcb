"""``advisor audit``: check the audit trail's hash chain."""

from __future__ import annotations

import asyncio
import re
import sys
from typing import TextIO

import click

__all__ = ["audit"]

_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


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
    metavar="SEQ:HASH",
    default=None,
    help="A chain head recorded earlier (kept outside the database): that seq must still carry that hash, which "
    "also catches a chain rewritten from scratch.",
)
@click.option(
    "--anchors-from",
    "anchors_from",
    type=click.File("r", encoding="utf-8", errors="replace"),
    metavar="LOGFILE",
    default=None,
    help="A JSON-lines log of the service (`-`: stdin): every `chain head` line the audit writer logged (every "
    "ADVISOR_AUDIT_ANCHOR_EVERY_ROWS decisions or ADVISOR_AUDIT_ANCHOR_EVERY_S seconds, per worker) is checked "
    "against the stored rows; other lines are ignored. Catches history rewritten and re-hashed, or a tail deleted, "
    "by someone able to move the chain head (the database owner). Decisions after the newest anchor in the log are "
    "covered by no anchor.",
)
def verify(batch_size: int, anchor: str | None, anchors_from: TextIO | None) -> None:
    """Walk every decision of ADVISOR_DATABASE_URL in seq order and check the hash chain.

    Prints `ok: N decisions, chain head <hash>` (exit 0; with anchors, how many were checked and the newest
    anchored seq), or the first broken link (exit 1): a changed row, a deleted or inserted one, a deleted or
    appended tail, a row whose hash differs from an anchor, an anchor beyond the last row. Without anchors this
    proves the rows agree with each other and with the head row, which someone with the database owner's rights can
    rewrite together; anchors kept outside the database prove the history up to the newest of them. Exit 2 when the
    database cannot be read (a missing one is never created), or LOGFILE holds no `chain head` line.
    """
    from service.db.chain import ChainHead
    from service.db.readonly import DatabaseNotReady, existing_database, one_line
    from service.services.audit import ChainReport, read_anchors, verify_chain
    from service.settings import get_settings

    expected: ChainHead | None = None
    if anchor is not None:
        match = _ANCHOR.match(anchor.strip().lower())
        if match is None:
            raise click.BadParameter("expected SEQ:HASH (a number, a colon, 64 hex digits)", param_hint="--anchor")
        expected = ChainHead(int(match[1]), match[2])
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
