"""Chain heads that leave the database: the writer logs the head, and ``audit verify --anchors-from`` checks them.

The hash chain shows any change made behind the service's back, except one made by someone who can also rewrite
every hash after it and the head row: the database owner or a superuser (``service.db.chain``). So the head also
goes where they cannot reach: the log. The audit writer logs one line, event ``chain head`` with ``chain`` (the
chain it appends to), ``seq``, ``row_hash`` and ``time`` (when that head was committed), once ``every_rows``
decisions were committed since its last line, or ``every_s`` seconds after the head moved (whichever comes first),
and once more when it stops if the head moved since. Logger ``service.audit.anchor``, at INFO whatever
``ADVISOR_LOG_LEVEL`` says.

``read_anchors`` reads those lines back from a log (JSON lines, any number of workers, other lines ignored), with
the ``audit checkpoint`` lines (``checkpoints.py``): each checkpoint's own hash (as chain 0) and every head it
bound. ``verify_chain`` checks each against the stored rows: a seq beyond the last row of its chain means the tail
was deleted, a hash that differs from the stored row's means history was rewritten. Decisions after the newest
anchor of their chain are covered by none: the window is at most ``every_rows`` decisions or ``every_s`` seconds,
plus the time the log takes to leave the machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from service.db.chain import ChainHead
from service.services.audit.batch import cancel_and_wait
from service.services.audit.checkpoints import CHECKPOINT_CHAIN, CHECKPOINT_EVENT

__all__ = ["ANCHOR_EVENT", "ANCHOR_LOGGER", "ChainAnchors", "read_anchors"]

ANCHOR_EVENT = "chain head"
ANCHOR_LOGGER = "service.audit.anchor"
_HASH = re.compile(r"^[0-9a-f]{64}$")

logger = logging.getLogger(ANCHOR_LOGGER)


class ChainAnchors:
    """When and what the writer logs: the newest head it committed, every ``every_rows`` rows or ``every_s`` seconds
    after the head moved, and at ``stop``."""

    def __init__(
        self, *, every_rows: int = 1000, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if every_rows < 1 or every_s <= 0:
            raise ValueError(f"anchor every_rows must be >= 1 and every_s > 0, got {every_rows}, {every_s}")
        self.every_rows = every_rows
        self.every_s = every_s
        self.clock = clock
        self._head: ChainHead | None = None  # the newest head committed, not logged yet if _moved_at is set
        self._committed_at = ""  # when it was committed (UTC, ISO 8601)
        self._rows = 0  # rows committed since the last line
        self._moved_at: float | None = None  # when the head first moved after the last line
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._log_forever(), name="audit-chain-anchors")

    async def stop(self) -> None:
        """Stop the timer; log the head if it moved since the last line."""
        await cancel_and_wait(self._task)
        self._task = None
        self.log_if_moved()

    def committed(self, head: ChainHead, rows: int) -> None:
        """The writer committed ``rows`` decisions, leaving its chain at ``head``."""
        if self._head is not None and head.chain != self._head.chain:
            self.log_if_moved()  # the writer moved to another chain: the last head of the one it left
            self._head = None
        if rows <= 0 or (self._head is not None and head.seq <= self._head.seq):
            return
        self._head = head
        self._committed_at = datetime.now(UTC).isoformat(timespec="microseconds")
        self._rows += rows
        if self._moved_at is None:
            self._moved_at = self.clock()
            self._moved.set()
        if self._rows >= self.every_rows:
            self.log_if_moved()

    def log_if_moved(self) -> None:
        if self._moved_at is None or self._head is None:
            return
        head = self._head
        logger.info(
            ANCHOR_EVENT,
            extra={"chain": head.chain, "seq": head.seq, "row_hash": head.row_hash, "time": self._committed_at},
        )
        self._rows, self._moved_at = 0, None
        self._moved.clear()

    async def _log_forever(self) -> None:
        while True:
            await self._moved.wait()
            moved_at = self._moved_at
            if moved_at is not None:
                await asyncio.sleep(max(0.0, moved_at + self.every_s - self.clock()))
                if self._moved_at == moved_at:  # not logged meanwhile by the row count
                    self.log_if_moved()


def read_anchors(lines: Iterable[str]) -> list[ChainHead]:
    """The chain heads of every ``chain head`` and ``audit checkpoint`` line in ``lines`` (a JSON-lines log), in
    the order read: a ``chain head`` line's head (chain 1 when the line names none: releases before 0.3 logged one
    chain), a checkpoint's own seq and hash as chain 0, then every head it bound.

    Lines that are not JSON objects, other events, and heads without an integer ``seq`` (and ``chain``) and a
    64-hex ``row_hash`` are skipped; text before the first ``{`` (a prefix a log collector adds, e.g.
    ``kubectl logs --prefix``) is ignored.
    """
    found: list[ChainHead] = []
    for line in lines:
        start = line.find("{")
        if start < 0 or (ANCHOR_EVENT not in line and CHECKPOINT_EVENT not in line):
            continue
        try:
            value = json.loads(line[start:])
        except (ValueError, RecursionError):  # not JSON, or nested past the stack: not an anchor line
            continue
        if not isinstance(value, dict):
            continue
        if value.get("event") == ANCHOR_EVENT:
            found.extend(_heads([[value.get("chain", 1), value.get("seq"), value.get("row_hash")]]))
        elif value.get("event") == CHECKPOINT_EVENT:
            own = [CHECKPOINT_CHAIN, value.get("seq"), value.get("row_hash")]
            bound = value.get("heads")
            found.extend(_heads([own, *(bound if isinstance(bound, list) else [])]))
    return found


def _heads(entries: Iterable[object]) -> list[ChainHead]:
    """The well-formed ``[chain, seq, row_hash]`` entries as heads."""
    heads: list[ChainHead] = []
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 3:
            continue
        chain, seq, row_hash = entry
        well_formed = type(chain) is int and chain >= 0 and type(seq) is int and seq >= 0
        if well_formed and isinstance(row_hash, str) and _HASH.match(row_hash):
            heads.append(ChainHead(seq, row_hash, chain))
    return heads
