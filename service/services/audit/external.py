"""``audit verify --checkpoints``: the copies on the witness as the trust root of the stored history.

The database owner can rewrite every row, every hash, every head row and every stored checkpoint together, and
even sign the rewritten checkpoints again if the signing key leaked. What they cannot do is change the copies
already on the witness (an S3 Object Lock bucket in COMPLIANCE mode, an append-only file on another host), nor
sign new ones with a key the verifier trusts without holding it. So the verifier trusts the copies, and only
copies signed by a trusted key (``--public-key``, several during a rotation), and holds the database to them:

1. Every copy (every line of a file, every version of every object) must have a ``row_hash`` that is the hash of
   its own fields (``checkpoint_hash``), and a signature valid by a trusted key: otherwise it is forged (or signed
   by a key not trusted). Two different copies of one seq are a forgery too. An entry that is not a JSON copy at
   all (a line cut short by a crash) is counted and named in the output, not trusted and not fatal: it can hide
   nothing, as every checkpoint still needs a valid copy.
2. The copies must link: each one's ``prev_hash`` is the ``row_hash`` of the copy of the seq before, when there is
   one. Every signed stored checkpoint up to the newest copy must have a copy (the publisher copies every signed
   checkpoint, in order, from the first, to an empty witness too): a copy missing there was deleted from the
   witness, or the witness was replaced without its history (give the old one too: ``--checkpoints`` repeats).
3. Every stored signed checkpoint must carry a valid signature by a trusted key (a rewritten history signed again
   with another key shows here).
4. Each copy's own hash (as chain 0) and every head it binds become anchors of ``verify_chain`` (``chain.py``),
   the one walk of the chains: a stored checkpoint whose hash differs (history re-hashed and re-signed), a
   stored checkpoint missing, a row whose hash differs (a rewritten row), a chain ending before a head a copy
   recorded (a truncated tail) each break the walk.

**The window.** Decisions committed after the newest copy's heads are covered by no copy: deleting them, with the
head rows moved back and the later stored checkpoints deleted, cannot be told from them never having been made.
The verifier says where the window starts (the newest copy's seq and time) and how many decisions lie in it; it
is at most ``ADVISOR_AUDIT_CHECKPOINT_EVERY_ROWS`` decisions or ``ADVISOR_AUDIT_CHECKPOINT_EVERY_S`` seconds
(per worker), plus however long the witness was unreachable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.chain import ChainHead, canonical_timestamp
from service.db.connection import read_snapshot
from service.db.repository import AuditRepository
from service.services.audit.checkpoints import CHECKPOINT_CHAIN, CHECKPOINT_FORMAT, checkpoint_hash
from service.services.audit.signing import TrustedKeys
from service.services.audit.witness import CheckpointCopy

__all__ = ["ExternalCopies", "check_copies", "check_stored", "uncovered"]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_decode = msgspec.json.Decoder(CheckpointCopy)


@dataclass(slots=True)
class ExternalCopies:
    """The copies read from the witness, once checked: one per seq, by seq, or the first problem found."""

    by_seq: dict[int, CheckpointCopy] = field(default_factory=dict)
    problem: str | None = None
    unreadable: list[str] = field(default_factory=list)  # where entries that are not JSON copies were found

    @property
    def newest(self) -> CheckpointCopy | None:
        return self.by_seq[max(self.by_seq)] if self.by_seq else None

    def anchors(self) -> list[ChainHead]:
        """Each copy's own hash (chain 0) and every head it binds."""
        found: list[ChainHead] = []
        for seq, copy in sorted(self.by_seq.items()):
            found.append(ChainHead(seq, copy.row_hash, CHECKPOINT_CHAIN))
            found.extend(ChainHead(head_seq, row_hash, chain) for chain, head_seq, row_hash in copy.heads)
        return found


def _copy_problem(copy: CheckpointCopy, trusted: TrustedKeys) -> str | None:
    """What is wrong with one copy on its own, if anything."""
    if copy.format != CHECKPOINT_FORMAT:
        return f"unknown format {copy.format!r}"
    try:
        created_at = datetime.strptime(copy.time, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return f"time {copy.time!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
    if canonical_timestamp(created_at) != copy.time:
        return f"time {copy.time!r} is not in canonical form"
    heads = json.dumps([list(head) for head in copy.heads], separators=(",", ":"))
    if checkpoint_hash(copy.seq, copy.prev_hash, created_at, heads) != copy.row_hash:
        return "its row_hash is not the hash of its contents — forged or altered"
    return trusted.problem(copy.seq, copy.row_hash, copy.key_id, copy.signature)


def check_copies(found: Iterable[tuple[str, bytes]], trusted: TrustedKeys) -> ExternalCopies:
    """Steps 1 and 2 (the links between copies) of the module's list, on the copies read from the witness."""
    copies = ExternalCopies()
    for where, data in found:
        try:
            copy = _decode.decode(data)
        except msgspec.DecodeError:
            # A write cut short by a crash leaves such a line (the publisher writes that copy again on a line of its
            # own). It hides nothing: every copy is still checked, and a missing one is found by seq.
            copies.unreadable.append(where)
            continue
        problem = _copy_problem(copy, trusted)
        if problem is not None:
            copies.problem = f"external checkpoint seq {copy.seq} ({where}): {problem}"
            return copies
        seen = copies.by_seq.setdefault(copy.seq, copy)
        if seen.row_hash != copy.row_hash:
            copies.problem = (
                f"external checkpoint seq {copy.seq} ({where}): two different checkpoints published for this seq "
                f"({seen.row_hash} and {copy.row_hash}) — one is forged"
            )
            return copies
    for seq, copy in copies.by_seq.items():
        before = copies.by_seq.get(seq - 1)
        if before is not None and copy.prev_hash != before.row_hash:
            copies.problem = f"external checkpoint seq {seq}: prev_hash does not match the copy of seq {seq - 1}"
            return copies
    return copies


async def check_stored(engine: AsyncEngine, copies: ExternalCopies, trusted: TrustedKeys) -> tuple[str | None, int]:
    """Steps 2 (no copy missing) and 3 of the module's list, on the stored checkpoints; the first problem, and how
    many signed stored checkpoints are newer than the newest copy (recorded but not published yet)."""
    newest = max(copies.by_seq, default=0)
    oldest = min(copies.by_seq, default=0)
    unpublished = 0
    async with read_snapshot(engine) as conn:
        async for stored in AuditRepository(conn).stream_checkpoints():
            if stored.signature is None and stored.key_id is None:
                continue  # recorded unsigned (before a key was configured): never published
            problem = trusted.problem(stored.seq, stored.row_hash, stored.key_id, stored.signature)
            if problem is not None:
                return f"stored checkpoint seq {stored.seq}: {problem} — history signed again", unpublished
            if stored.seq <= newest and stored.seq not in copies.by_seq:
                return (
                    f"checkpoint seq {stored.seq} is stored and signed but missing from the external copy "
                    f"(which holds seq {oldest}..{newest}) — a published checkpoint was removed"
                ), unpublished
            if stored.seq > newest:
                unpublished += 1
    return None, unpublished


def uncovered(heads: Mapping[int, ChainHead], newest: CheckpointCopy | None) -> int:
    """Decisions after the heads the newest copy binds: what no external checkpoint covers."""
    bound = {} if newest is None else {chain: seq for chain, seq, _ in newest.heads}
    return sum(max(0, head.seq - bound.get(chain, 0)) for chain, head in heads.items())


def describe(copies: ExternalCopies, sources: Sequence[str], uncovered_decisions: int, unpublished: int) -> str:
    """The verdict's line on the external copies, with the window they leave."""
    newest = copies.newest
    if newest is None:  # pragma: no cover - the command refuses an empty witness before
        return "no external checkpoint"
    keys = sorted({c.key_id for c in copies.by_seq.values() if c.key_id})
    text = (
        f"{len(copies.by_seq)} external checkpoint(s) from {', '.join(sources)} verified "
        f"(seq {min(copies.by_seq)}..{newest.seq}, signed by {len(keys)} trusted key(s)); "
        f"the newest, seq {newest.seq} at {newest.time}, is the end of what they prove: "
        f"{uncovered_decisions} decision(s) after it are covered by no external checkpoint"
    )
    if unpublished:
        text += f" ({unpublished} newer stored checkpoint(s) not published yet)"
    if copies.unreadable:
        text += f"; {len(copies.unreadable)} unreadable entry(ies) ignored, the first at {copies.unreadable[0]}"
    return text
