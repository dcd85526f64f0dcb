"""Chain verification: walks every chain's decisions in ``seq`` order and reports the first broken link.

The writers chain each row's hash to the one before it on their chain (``service.db.chain``); this module
recomputes every chain from the rows as stored, checks each chain's end against its ``audit_chain_head`` row, and
checks the checkpoints that bind the chains (``checkpoints``): a chain that ends before a head a checkpoint
recorded lost its tail, a chain a checkpoint names that is gone lost all of it. Anchors kept outside the database
(``anchors``) are checked the same way, and also against the checkpoints themselves (as chain 0).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.archive_store import archived_months
from service.db.chain import ChainHead, chain_hash, genesis_hash
from service.db.connection import read_snapshot
from service.db.document_store import UnreadableDocument
from service.db.repository import AuditRepository, ChainedDecision
from service.services.audit.archive_walk import archived_runs, check_archive_files, merge_links
from service.services.audit.checkpoints import CHECKPOINT_CHAIN, verify_checkpoints


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first broken link: on which chain, at which ``seq`` (None for a head row) and what is wrong there."""

    seq: int | None  # the row where the chain breaks (for a deleted tail: the first missing seq)
    decision_id: uuid.UUID | None  # None where the row is missing
    reason: str
    chain: int = 1  # 0: the checkpoints' own chain

    def __str__(self) -> str:
        where = "checkpoint" if self.chain == CHECKPOINT_CHAIN else f"chain {self.chain}"
        if self.seq is None:
            return f"{where}: {self.reason}"
        if self.decision_id is None:
            return f"{where} seq {self.seq}: {self.reason}"
        return f"{where} seq {self.seq} (decision {self.decision_id}): {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    decisions: int  # rows walked (up to the break, if any)
    heads: Mapping[int, ChainHead]  # by chain: the last good link walked
    broken: ChainBreak | None
    anchors: int = 0  # distinct anchors (chain, seq, hash) checked
    newest_anchor: int | None = None  # the highest anchored seq of chain 1
    checkpoints: int = 0  # checkpoints checked
    uncovered: int = 0  # decisions after the newest anchor or checkpoint of their chain

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def head(self) -> ChainHead:
        """Chain 1's end (the one chain of a single-writer database)."""
        return self.heads.get(1, ChainHead(0, genesis_hash(1)))

    def __str__(self) -> str:
        if self.broken is not None:
            return f"broken: {self.broken}"
        chains = [head for chain, head in sorted(self.heads.items()) if head.seq or chain == 1]
        if len(chains) <= 1:
            text = f"ok: {self.decisions} decisions, chain head {self.head.row_hash}"
        else:
            listed = ", ".join(f"{h.chain}:{h.seq}:{h.row_hash}" for h in chains)
            text = f"ok: {self.decisions} decisions in {len(chains)} chains, heads {listed}"
        if self.checkpoints:
            text += f"; {self.checkpoints} checkpoint(s) checked"
        if not self.anchors:
            return text
        if len(chains) <= 1 and self.newest_anchor is not None:
            uncovered = self.head.seq - self.newest_anchor
            return (
                f"{text}; {self.anchors} anchor(s) checked, the newest at seq {self.newest_anchor} "
                f"({uncovered} decision(s) after it covered by no anchor)"
            )
        return f"{text}; {self.anchors} anchor(s) checked ({self.uncovered} decision(s) covered by none)"


@dataclass(slots=True)
class _Walk:
    """What the walk knows so far: the expected hashes, the heads recorded, the last good link per chain."""

    expected: dict[tuple[int, int], set[str]]
    recorded: dict[int, ChainHead]
    last: dict[int, ChainHead] = field(default_factory=dict)
    count: int = 0
    # Archived months not walked (no --archives): per chain, the runs of seq their manifests record.
    archived: dict[int, list[dict[str, object]]] = field(default_factory=dict)
    # The rulesets the decisions name (few), each with the first decision naming it: (seq, id, chain).
    rulesets: dict[str, tuple[int, uuid.UUID, int]] = field(default_factory=dict)

    def start(self, chain: int) -> ChainHead:
        head = ChainHead(0, genesis_hash(chain), chain)
        self.last[chain] = head
        return head


async def verify_chain(
    engine: AsyncEngine,
    *,
    batch_size: int = 1000,
    anchor: ChainHead | None = None,
    anchors: Iterable[ChainHead] = (),
    archives: Sequence[Path] = (),
    on_progress: Callable[[int], None] | None = None,
) -> ChainReport:
    """Walk every chain in ``seq`` order, recompute each hash, and report the first broken link.

    Detects a changed row (its hash), a deleted or inserted one (a gap or repeat in ``seq``, or a ``prev_hash``
    that is not the previous row's hash), a row moved to another chain (its first link no longer starts from that
    chain's genesis), a deleted or appended tail (each chain's ``audit_chain_head`` row against its last decision),
    a tail cut below a checkpoint or an anchor, a profile or recommendation document changed or deleted (it no longer
    decodes to the text its name hashes), and a decision naming a ruleset that is not stored. Rows are streamed,
    never all held in memory, in one read-only snapshot, so decisions committed meanwhile neither confuse nor are
    part of the walk. The checkpoints' expected heads are held in memory (one entry per chain that moved per
    checkpoint), and so are the rulesets named (one entry each).

    ``anchor`` and ``anchors``: heads recorded outside the database (printed by an earlier verify, or logged by the
    writers: ``anchors.read_anchors``); an anchor on chain 0 is a checkpoint's hash.

    ``on_progress`` is told how many more decisions were walked, every thousand or so.

    ``archives``: the files ``advisor audit archive`` wrote; their rows are walked with the live ones, merged in
    ``(chain, seq)`` order, after each is checked against the SHA-256 the database recorded for it. Without them,
    archived months are taken as their manifests (in ``audit_archives``) record them: the live rows must continue
    each chain where an archived run ends, but the archived rows themselves are not checked.
    """
    expected: dict[tuple[int, int], set[str]] = {}
    for head in (*anchors, *(() if anchor is None else (anchor,))):
        expected.setdefault((head.chain, head.seq), set()).add(head.row_hash)
    anchored = sum(map(len, expected.values()))
    newest = max((seq for chain, seq in expected if chain == 1), default=None)
    async with read_snapshot(engine) as conn:
        repo = AuditRepository(conn)
        walk = _Walk(expected, await repo.get_chain_heads())
        records = await archived_months(conn)
        broken = check_archive_files(records, archives)
        checked = 0
        if broken is None:
            checked, broken = await verify_checkpoints(repo.stream_checkpoints(batch_size=batch_size), expected)
        if broken is None:
            links = repo.stream_chain(batch_size=batch_size)
            if archives:
                links = merge_links(links, archives)
            else:
                walk.archived = archived_runs(records)
            broken = await _walk_chains(links if on_progress is None else _counted(links, on_progress), walk)
        if broken is None:
            broken = _unknown_ruleset(walk, {r.sha256 for r in await repo.list_rulesets()})
    uncovered = sum(
        head.seq - max((seq for chain, seq in expected if chain == head.chain and seq <= head.seq), default=0)
        for head in walk.last.values()
    )
    return ChainReport(
        decisions=walk.count,
        heads=dict(walk.last),
        broken=None if broken is None else ChainBreak(*broken),
        anchors=anchored,
        newest_anchor=newest,
        checkpoints=checked,
        uncovered=uncovered,
    )


Found = tuple[int | None, uuid.UUID | None, str, int]  # ChainBreak's fields
_PROGRESS_EVERY = 1000


async def _counted(
    links: AsyncIterator[ChainedDecision], tell: Callable[[int], None]
) -> AsyncIterator[ChainedDecision]:
    """``links``, telling ``tell`` every ``_PROGRESS_EVERY`` of them (and the rest at the end)."""
    count = 0
    async for link in links:
        yield link
        count += 1
        if count == _PROGRESS_EVERY:
            tell(count)
            count = 0
    if count:
        tell(count)


async def _walk_chains(links: AsyncIterator[ChainedDecision], walk: _Walk) -> Found | None:
    try:
        return await _walk_links(links, walk)
    except UnreadableDocument as exc:  # the rows before it were walked and checked out
        if exc.decision is None:  # pragma: no cover - stream_chain always names the decision
            raise
        chain, seq, decision_id = exc.decision
        what = "is missing — it was deleted" if exc.missing else "was changed — it no longer hashes to its name"
        return (seq, decision_id, f"its {exc.which} document {what}", chain)


async def _walk_links(links: AsyncIterator[ChainedDecision], walk: _Walk) -> Found | None:
    last: ChainHead | None = None
    async for link in links:
        if last is None or link.chain != last.chain:
            if last is not None and (broken := _tail_break(last, walk)) is not None:
                return broken
            last = walk.start(link.chain)
        broken = _link_break(link, last, walk)
        if broken is not None:
            return broken
        last = link.head
        walk.last[link.chain] = last
        walk.count += 1
        walk.rulesets.setdefault(link.decision.ruleset_sha256, (link.seq, link.decision.id, link.chain))
    if last is not None and (broken := _tail_break(last, walk)) is not None:
        return broken
    # Chains without a single row left: their head rows and every checkpoint or anchor naming them.
    named = {1, *walk.recorded, *(chain for chain, _ in walk.expected if chain != CHECKPOINT_CHAIN)}
    for chain in sorted(named - set(walk.last)):
        broken = _tail_break(walk.start(chain), walk)
        if broken is not None:
            return broken
    return None


def _link_break(link: ChainedDecision, last: ChainHead, walk: _Walk) -> Found | None:
    """What is wrong with ``link``, the row after ``last`` (the last good link of its chain), if anything."""
    decision_id, seq, expected, chain = link.decision.id, last.seq, last.seq + 1, link.chain
    recorded = walk.recorded.get(chain)
    if recorded is None:
        return (None, None, "its audit_chain_head row is missing — it was deleted", chain)
    if link.seq > expected and (bridged := _archived_before(walk, chain, expected, link.seq - 1)) is not None:
        if bridged and link.prev_hash != bridged:
            reason = f"prev_hash does not match seq {link.seq - 1}, the last of an archived run — rows were changed"
            return (link.seq, decision_id, reason, chain)
        last = ChainHead(link.seq - 1, link.prev_hash, chain)
        seq, expected = last.seq, link.seq
    if link.seq > expected:
        missing = f"seq {expected}" if link.seq == expected + 1 else f"seq {expected}..{link.seq - 1}"
        return (link.seq, decision_id, f"gap in seq: {missing} missing — a row was deleted", chain)
    if link.seq < expected:
        return (
            link.seq,
            decision_id,
            f"seq {link.seq} again after seq {seq} (expected {expected}) — a row was inserted",
            chain,
        )
    if link.seq > recorded.seq:
        reason = f"beyond the chain head (seq {recorded.seq}) — a row was appended behind the service's back"
        return (link.seq, decision_id, reason, chain)
    if link.prev_hash != last.row_hash:
        before = f"seq {seq}" if seq else f"the genesis of chain {chain}"
        reason = f"prev_hash does not match {before} — a row was deleted or inserted"
        return (link.seq, decision_id, reason, chain)
    if chain_hash(link.seq, link.prev_hash, link.decision) != link.row_hash:
        return (link.seq, decision_id, "row hash mismatch — the row was changed", chain)
    differing = sorted(walk.expected.get((chain, link.seq), set()) - {link.row_hash})
    if differing:
        reason = f"hash differs from the anchor or checkpoint {differing[0]} — chain rewritten"
        return (link.seq, decision_id, reason, chain)
    return None


def _archived_before(walk: _Walk, chain: int, first: int, last: int) -> str | None:
    """When seq ``first``..``last`` of ``chain`` are all in archived runs (not walked): the row_hash recorded for
    ``last`` if a run ends there ("" if it does not), else None."""
    runs = walk.archived.get(chain, [])
    seq, ends = first, ""
    while seq <= last:
        run = next((r for r in runs if int(str(r["first_seq"])) <= seq <= int(str(r["last_seq"]))), None)
        if run is None:
            return None
        seq = int(str(run["last_seq"])) + 1
        ends = str(run["last_row_hash"]) if int(str(run["last_seq"])) == last else ""
    return ends


def _tail_break(last: ChainHead, walk: _Walk) -> Found | None:
    """What is wrong at the end of ``last.chain``, once every row up to ``last`` checked out."""
    seq, chain = last.seq, last.chain
    beyond = max((s for c, s in walk.expected if c == chain), default=0)
    if beyond > seq:
        reason = (
            f"the checkpoint or anchor seq {beyond} is beyond the last decision (seq {seq}) — rows at the end "
            "were deleted"
        )
        return (None, None, reason, chain)
    recorded = walk.recorded.get(chain)
    if recorded is None:
        return (None, None, "its audit_chain_head row is missing — it was deleted", chain)
    if recorded.seq > seq and _archived_before(walk, chain, seq + 1, recorded.seq) == recorded.row_hash:
        return None  # the chain's end is in an archived month
    if recorded.seq > seq:
        missing = f"seq {seq + 1}" if recorded.seq == seq + 1 else f"seq {seq + 1}..{recorded.seq}"
        reason = (
            f"missing: the chain head records seq {recorded.seq} but the last decision is seq {seq} "
            f"({missing} gone) — rows at the end were deleted"
        )
        return (seq + 1, None, reason, chain)
    if recorded.row_hash != last.row_hash:
        reason = f"chain head hash {recorded.row_hash} does not match seq {seq} ({last.row_hash}) — the head row was "
        return (None, None, reason + "changed", chain)
    return None


def _unknown_ruleset(walk: _Walk, stored: set[str]) -> Found | None:
    """The first decision (by chain, then seq) naming a ruleset that is not stored: no foreign key keeps them
    stored since the decisions are partitioned (migration 0009), so verification does."""
    unknown = sorted(
        (chain, seq, decision_id, sha) for sha, (seq, decision_id, chain) in walk.rulesets.items() if sha not in stored
    )
    if not unknown:
        return None
    chain, seq, decision_id, sha = unknown[0]
    return (seq, decision_id, f"it names ruleset {sha}, which is not stored", chain)
