"""Checkpoints: the heads of every chain, recorded together every so often, so the chains are bound to each other.

Each writer appends to a chain of its own (``service.db.chain``). A chain's end is recorded in its
``audit_chain_head`` row, which someone able to rewrite that row could move back together with the chain's tail.
So every ``every_s`` seconds one of the writers (whichever finds the newest checkpoint older than that first)
records a checkpoint in ``audit_checkpoints``: the heads ``[chain, seq, row_hash]`` of every chain with decisions,
at that moment, unless none moved since the checkpoint before; each writer records one more when it stops. The
checkpoints form a hash chain of their own (``checkpoint_hash``: SHA-256 of the compact JSON array
``["advisor-audit-checkpoint/1", seq, prev_hash, created_at, heads]``, ``prev_hash`` 64 zeros for seq 1).

**Rows or seconds.** With ``every_rows`` set, a writer also records one as soon as it committed that many decisions
since its last (``committed``, called by the writer after each batch; the checkpoint is taken by the timer task,
never on the decisions' path).

**Signed, and copied out of reach.** With a ``CheckpointSigner`` (``signing.py``) each checkpoint is stored with its
Ed25519 signature and key id; with a witness (``witness.py``: an S3 Object Lock bucket or an append-only file) every
signed checkpoint is then copied there, in order (``publisher.py``), and ``audit verify --checkpoints`` takes those
copies as its trust root (``external.py``).

``verify_checkpoints`` walks them and hands their heads to the chain walk (``chain.py``), where a chain that ends
before a recorded head, or a recorded chain that is gone, is reported. Each checkpoint is also logged (event
``audit checkpoint``, logger ``service.audit.anchor``), so ``audit verify --anchors-from`` holds the checkpoints
themselves (as chain 0) and their heads to what left the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.chain import GENESIS_HASH, ChainHead, canonical_timestamp
from service.db.connection import write_transaction
from service.db.repository import AuditRepository, StoredCheckpoint
from service.services.audit.batch import cancel_and_wait

if TYPE_CHECKING:
    from service.services.audit.publisher import CheckpointPublisher
    from service.services.audit.signing import CheckpointSigner
    from service.settings import Settings

__all__ = [
    "CHECKPOINT_CHAIN",
    "CHECKPOINT_EVENT",
    "CHECKPOINT_FORMAT",
    "Checkpoints",
    "checkpoint_hash",
    "decode_heads",
    "encode_heads",
    "verify_checkpoints",
]

CHECKPOINT_FORMAT = "advisor-audit-checkpoint/1"
CHECKPOINT_CHAIN = 0  # how anchors and breaks name the checkpoints' own chain
CHECKPOINT_EVENT = "audit checkpoint"

logger = logging.getLogger("service.audit.anchor")
_HEADS_TYPE = list[tuple[int, int, str]]


def encode_heads(heads: Iterable[ChainHead]) -> str:
    """The heads as stored and hashed: ``[[chain, seq, row_hash], ...]`` by chain, compact JSON."""
    ordered = sorted(heads, key=lambda head: head.chain)
    return json.dumps([[h.chain, h.seq, h.row_hash] for h in ordered], separators=(",", ":"))


def decode_heads(text: str) -> list[ChainHead]:
    """The heads of a stored checkpoint; ``ValueError`` if the text is not what ``encode_heads`` writes."""
    try:
        found = msgspec.json.decode(text, type=_HEADS_TYPE)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a list of [chain, seq, row_hash]: {exc}") from exc
    return [ChainHead(seq=seq, row_hash=row_hash, chain=chain) for chain, seq, row_hash in found]


def checkpoint_hash(seq: int, prev_hash: str, created_at: datetime, heads: str) -> str:
    encoded = json.dumps(
        [CHECKPOINT_FORMAT, seq, prev_hash, canonical_timestamp(created_at), heads], separators=(",", ":")
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


Found = tuple[int | None, uuid.UUID | None, str, int]  # a ChainBreak's fields (chain.py)


async def verify_checkpoints(
    stored: AsyncIterator[StoredCheckpoint], expected: dict[tuple[int, int], set[str]]
) -> tuple[int, Found | None]:
    """Walk the checkpoints in ``seq`` order: their links, their hashes, their anchors (``expected`` on chain 0).
    Adds every head they record to ``expected``; how many were walked, and the first break."""
    count, prev_hash = 0, GENESIS_HASH
    async for checkpoint in stored:
        seq = count + 1
        if checkpoint.seq != seq:
            what = "missing — a checkpoint was deleted" if checkpoint.seq > seq else "again — one was inserted"
            return count, (checkpoint.seq, None, f"expected checkpoint seq {seq}: seq {seq} {what}", CHECKPOINT_CHAIN)
        if checkpoint.prev_hash != prev_hash:
            reason = "prev_hash does not match the checkpoint before — one was deleted or inserted"
            return count, (seq, None, reason, CHECKPOINT_CHAIN)
        recomputed = checkpoint_hash(seq, checkpoint.prev_hash, checkpoint.created_at, checkpoint.heads)
        if recomputed != checkpoint.row_hash:
            return count, (seq, None, "checkpoint hash mismatch — the checkpoint was changed", CHECKPOINT_CHAIN)
        differing = sorted(expected.get((CHECKPOINT_CHAIN, seq), set()) - {checkpoint.row_hash})
        if differing:
            reason = f"hash differs from the anchor {differing[0]} — checkpoints rewritten"
            return count, (seq, None, reason, CHECKPOINT_CHAIN)
        try:
            heads = decode_heads(checkpoint.heads)
        except ValueError as exc:  # the hash covers the text, so only a rewriter could store this
            return count, (seq, None, f"unreadable heads: {exc}", CHECKPOINT_CHAIN)
        for head in heads:
            expected.setdefault((head.chain, head.seq), set()).add(head.row_hash)
        count, prev_hash = seq, checkpoint.row_hash
    beyond = max((seq for chain, seq in expected if chain == CHECKPOINT_CHAIN), default=0)
    if beyond > count:
        reason = f"an anchor records checkpoint seq {beyond} but the last is seq {count} — checkpoints were deleted"
        return count, (None, None, reason, CHECKPOINT_CHAIN)
    return count, None


class Checkpoints:
    """A writer's part in checkpointing: every ``every_s`` seconds, a checkpoint if none was recorded for that long
    (by any writer) and a head moved; one once this writer committed ``every_rows`` decisions since its last; one
    more at ``stop``. Signed with ``signer`` and copied by ``publisher``, if given."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        every_s: float,
        clock: Callable[[], datetime],
        every_rows: int | None = None,
        signer: CheckpointSigner | None = None,
        publisher: CheckpointPublisher | None = None,
    ) -> None:
        if every_s <= 0 or (every_rows is not None and every_rows < 1):
            raise ValueError(f"checkpoint every_s must be > 0 and every_rows >= 1, got {every_s}, {every_rows}")
        self.engine = engine
        self.every_s = every_s
        self.every_rows = every_rows
        self.clock = clock
        self.signer = signer
        self.publisher = publisher
        self.written = 0  # checkpoints this writer recorded
        self._rows = 0  # decisions this writer committed since its last checkpoint
        self._rows_due = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, engine: AsyncEngine, settings: Settings, *, clock: Callable[[], datetime]) -> Checkpoints:
        """As the settings say; reads the signing key (a missing or wrong key file fails here, at start-up)."""
        from service.services.audit.publisher import CheckpointPublisher
        from service.services.audit.signing import CheckpointSigner
        from service.services.audit.witness import open_witness

        key_file, witness = settings.audit_checkpoint_signing_key_file, settings.audit_checkpoint_witness
        return cls(
            engine,
            every_s=settings.audit_checkpoint_every_s,
            every_rows=settings.audit_checkpoint_every_rows,
            clock=clock,
            signer=None if key_file is None else CheckpointSigner.from_file(key_file),
            publisher=None
            if witness is None
            else CheckpointPublisher(
                engine, open_witness(witness, retain_days=settings.audit_checkpoint_witness_retain_days)
            ),
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._checkpoint_forever(), name="audit-checkpoints")

    async def stop(self) -> None:
        """Stop the timer and record a checkpoint if a head moved since the last one (best effort: logged)."""
        await cancel_and_wait(self._task)
        self._task = None
        await self._try(due_after_s=0)

    def committed(self, rows: int) -> None:
        """The writer committed ``rows`` decisions: wake the timer task once ``every_rows`` are reached."""
        if self.every_rows is None or rows <= 0:
            return
        self._rows += rows
        if self._rows >= self.every_rows:
            self._rows_due.set()

    async def record(self, *, due_after_s: float) -> StoredCheckpoint | None:
        """A checkpoint of every chain's head, unless the newest is younger than ``due_after_s`` or no head moved
        since it; None then, or when another writer recorded the same seq first."""
        now = self.clock()
        self._rows = 0
        try:
            async with write_transaction(self.engine) as conn:
                repo = AuditRepository(conn)
                last = await repo.last_checkpoint()
                if last is not None and now - last.created_at < timedelta(seconds=due_after_s):
                    return None
                heads = encode_heads(h for h in (await repo.get_chain_heads()).values() if h.seq > 0)
                if heads == (last.heads if last is not None else "[]"):
                    return None
                seq, prev_hash = (1, GENESIS_HASH) if last is None else (last.seq + 1, last.row_hash)
                row_hash = checkpoint_hash(seq, prev_hash, now, heads)
                key_id, signature = (None, None) if self.signer is None else self.signer.identify(seq, row_hash)
                checkpoint = StoredCheckpoint(seq, now, heads, prev_hash, row_hash, key_id, signature)
                await repo.add_checkpoint(checkpoint)
        except IntegrityError:  # another writer recorded this seq first: theirs covers the same moment
            return None
        self.written += 1
        logger.info(
            CHECKPOINT_EVENT,
            extra={
                "seq": checkpoint.seq,
                "row_hash": checkpoint.row_hash,
                "time": canonical_timestamp(now),
                "heads": json.loads(checkpoint.heads),
                "key_id": key_id,
                "signature": signature,
            },
        )
        return checkpoint

    async def _try(self, *, due_after_s: float) -> None:
        recorded = None
        try:
            recorded = await self.record(due_after_s=due_after_s)
        except Exception as exc:  # an outage: the next one will bind the heads
            logger.warning("recording an audit checkpoint failed: %s", exc)
        if self.publisher is not None and (recorded is not None or self.publisher.behind):
            await self.publisher.try_publish()

    async def _checkpoint_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every_s):
                    await self._rows_due.wait()
            if self._rows_due.is_set():  # every_rows decisions committed: due now, whenever the last one was
                self._rows_due.clear()
                await self._try(due_after_s=0)
            else:
                await self._try(due_after_s=self.every_s * 0.9)  # timers of several writers drift: skip no turn
