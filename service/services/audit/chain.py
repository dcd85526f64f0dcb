"""Chain verification: walks the stored decisions in ``seq`` order and reports the first broken link.

The writer chains each row's hash to the one before it (``service.db.chain``); this module recomputes that chain
from the rows as stored, so any change, deletion or insertion behind the service's back shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.chain import GENESIS_HASH, ChainHead, chain_hash
from service.db.connection import read_snapshot
from service.db.repository import AuditRepository, ChainedDecision


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first broken link: at which ``seq`` (None for the head table) and what is wrong there."""

    seq: int | None  # the row where the chain breaks (for a deleted tail: the first missing seq)
    decision_id: uuid.UUID | None  # None where the row is missing
    reason: str

    def __str__(self) -> str:
        if self.seq is None:
            return self.reason
        if self.decision_id is None:
            return f"seq {self.seq}: {self.reason}"
        return f"seq {self.seq} (decision {self.decision_id}): {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    decisions: int  # rows walked (up to the break, if any)
    head: ChainHead  # the last good link walked
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def __str__(self) -> str:
        if self.broken is None:
            return f"ok: {self.decisions} decisions, chain head {self.head.row_hash}"
        return f"broken: {self.broken}"


async def verify_chain(engine: AsyncEngine, *, batch_size: int = 1000, anchor: ChainHead | None = None) -> ChainReport:
    """Walk every decision in ``seq`` order, recompute each hash, and report the first broken link.

    Detects a changed row (its hash), a deleted or inserted one (a gap or repeat in ``seq``, or a ``prev_hash``
    that is not the previous row's hash), and a deleted or appended tail (the ``audit_chain_head`` row against the
    last decision). Rows are streamed, never all held in memory, in one read-only snapshot, so decisions committed
    meanwhile neither confuse nor are part of the walk. ``anchor``: a head printed by an earlier verify (kept
    elsewhere); that seq must still carry that hash, which also catches a chain rewritten from scratch.
    """
    count, last = 0, ChainHead(0, GENESIS_HASH)
    async with read_snapshot(engine) as conn:
        repo = AuditRepository(conn)
        recorded = await repo.get_chain_head()
        if recorded is None:
            missing = ChainBreak(None, None, "the audit_chain_head row is missing — it was deleted")
            return ChainReport(decisions=0, head=last, broken=missing)
        async for link in repo.stream_chain(batch_size=batch_size):
            broken = _link_break(link, last, recorded, anchor)
            if broken is not None:
                return ChainReport(decisions=count, head=last, broken=broken)
            count, last = count + 1, link.head
        return ChainReport(decisions=count, head=last, broken=_tail_break(last, recorded, anchor))


def _link_break(
    link: ChainedDecision, last: ChainHead, recorded: ChainHead, anchor: ChainHead | None
) -> ChainBreak | None:
    """What is wrong with ``link``, the row after ``last`` (the last good link), if anything."""
    decision_id, seq, expected = link.decision.id, last.seq, last.seq + 1
    if link.seq > expected:
        missing = f"seq {expected}" if link.seq == expected + 1 else f"seq {expected}..{link.seq - 1}"
        return ChainBreak(link.seq, decision_id, f"gap in seq: {missing} missing — a row was deleted")
    if link.seq < expected:
        return ChainBreak(
            link.seq, decision_id, f"seq {link.seq} again after seq {seq} (expected {expected}) — a row was inserted"
        )
    if link.seq > recorded.seq:
        return ChainBreak(
            link.seq,
            decision_id,
            f"beyond the chain head (seq {recorded.seq}) — a row was appended behind the service's back",
        )
    if link.prev_hash != last.row_hash:
        before = f"seq {seq}" if seq else "the start of the chain"
        return ChainBreak(link.seq, decision_id, f"prev_hash does not match {before} — a row was deleted or inserted")
    if chain_hash(link.seq, link.prev_hash, link.decision) != link.row_hash:
        return ChainBreak(link.seq, decision_id, "row hash mismatch — the row was changed")
    if anchor is not None and link.seq == anchor.seq and link.row_hash != anchor.row_hash:
        return ChainBreak(link.seq, decision_id, f"hash differs from the anchor {anchor.row_hash} — chain rewritten")
    return None


def _tail_break(last: ChainHead, recorded: ChainHead, anchor: ChainHead | None) -> ChainBreak | None:
    """What is wrong at the end of the chain, once every row up to ``last`` checked out."""
    seq = last.seq
    if anchor is not None and anchor.seq > seq:
        return ChainBreak(None, None, f"the anchor seq {anchor.seq} is beyond the last decision (seq {seq})")
    if recorded.seq > seq:
        missing = f"seq {seq + 1}" if recorded.seq == seq + 1 else f"seq {seq + 1}..{recorded.seq}"
        return ChainBreak(
            seq + 1,
            None,
            f"missing: the chain head records seq {recorded.seq} but the last decision is seq {seq} "
            f"({missing} gone) — rows at the end were deleted",
        )
    if recorded.row_hash != last.row_hash:
        return ChainBreak(
            None,
            None,
            f"chain head hash {recorded.row_hash} does not match seq {seq} ({last.row_hash}) — the head row was "
            "changed",
        )
    return None
