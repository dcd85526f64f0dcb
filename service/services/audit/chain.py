"""Chain verification: walks the stored decisions in ``seq`` order and reports the first broken link.

The writer chains each row's hash to the one before it (``service.db.chain``); this module recomputes that chain
from the rows as stored, so any change, deletion or insertion behind the service's back shows.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
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
    anchors: int = 0  # distinct anchors (seq, hash) checked
    newest_anchor: int | None = None  # the highest anchored seq

    @property
    def ok(self) -> bool:
        return self.broken is None

    def __str__(self) -> str:
        if self.broken is not None:
            return f"broken: {self.broken}"
        text = f"ok: {self.decisions} decisions, chain head {self.head.row_hash}"
        if self.newest_anchor is None:
            return text
        uncovered = self.head.seq - self.newest_anchor
        return (
            f"{text}; {self.anchors} anchor(s) checked, the newest at seq {self.newest_anchor} "
            f"({uncovered} decision(s) after it covered by no anchor)"
        )


async def verify_chain(
    engine: AsyncEngine,
    *,
    batch_size: int = 1000,
    anchor: ChainHead | None = None,
    anchors: Iterable[ChainHead] = (),
) -> ChainReport:
    """Walk every decision in ``seq`` order, recompute each hash, and report the first broken link.

    Detects a changed row (its hash), a deleted or inserted one (a gap or repeat in ``seq``, or a ``prev_hash``
    that is not the previous row's hash), and a deleted or appended tail (the ``audit_chain_head`` row against the
    last decision). Rows are streamed, never all held in memory, in one read-only snapshot, so decisions committed
    meanwhile neither confuse nor are part of the walk.

    ``anchor`` and ``anchors``: heads recorded outside the database (printed by an earlier verify, or logged by the
    writer: ``anchors.read_anchors``). Each seq must still carry its hash, which catches a chain rewritten and
    re-hashed by someone who can also move the head (the owner); an anchored seq beyond the last row means the tail
    was deleted. Decisions after the newest anchor are covered by none.
    """
    expected: dict[int, set[str]] = {}
    for head in (*anchors, *(() if anchor is None else (anchor,))):
        expected.setdefault(head.seq, set()).add(head.row_hash)
    report = functools.partial(
        ChainReport, anchors=sum(map(len, expected.values())), newest_anchor=max(expected, default=None)
    )
    count, last = 0, ChainHead(0, GENESIS_HASH)
    async with read_snapshot(engine) as conn:
        repo = AuditRepository(conn)
        recorded = await repo.get_chain_head()
        if recorded is None:
            missing = ChainBreak(None, None, "the audit_chain_head row is missing — it was deleted")
            return report(decisions=0, head=last, broken=missing)
        async for link in repo.stream_chain(batch_size=batch_size):
            broken = _link_break(link, last, recorded, expected)
            if broken is not None:
                return report(decisions=count, head=last, broken=broken)
            count, last = count + 1, link.head
        return report(decisions=count, head=last, broken=_tail_break(last, recorded, expected))


def _link_break(
    link: ChainedDecision, last: ChainHead, recorded: ChainHead, anchors: Mapping[int, set[str]]
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
    differing = sorted(anchors.get(link.seq, set()) - {link.row_hash})
    if differing:
        return ChainBreak(link.seq, decision_id, f"hash differs from the anchor {differing[0]} — chain rewritten")
    return None


def _tail_break(last: ChainHead, recorded: ChainHead, anchors: Mapping[int, set[str]]) -> ChainBreak | None:
    """What is wrong at the end of the chain, once every row up to ``last`` checked out."""
    seq = last.seq
    beyond = max(anchors, default=0)
    if beyond > seq:
        return ChainBreak(
            None,
            None,
            f"the anchor seq {beyond} is beyond the last decision (seq {seq}) — rows at the end were deleted",
        )
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
