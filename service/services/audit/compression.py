"""How a writer compresses the profiles and answers it stores, and the dictionary it trains for them.

Answers are JSON with the same keys and much of the same prose every time, so a zstd dictionary trained on a few
hundred of them shrinks each one several times further than zstd alone (bench/README.md, "audit_bench.py").
A database starts without one: a writer compresses with plain zstd and keeps the first ``samples`` answers it
stores (more while they are too small to train on: ``MIN_TRAINING_BYTES``; none once eight times as many still
are, since answers that small gain nothing); once it has them it trains a dictionary in a worker thread, stores
it in ``audit_dictionaries`` (unless another writer stored one first: then it uses that one) and compresses with
it from then on. Documents name the
dictionary they were compressed with, so a newer dictionary never changes how an older document decodes.

``samples = 0`` turns training off (plain zstd only). What a writer has committed is remembered
(``WrittenDocuments``) so a profile or answer repeated within a month is neither compressed nor sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.connection import write_transaction
from service.db.document_store import add_dictionary, latest_dictionary
from service.db.documents import (
    DICTIONARY_BYTES,
    Dictionary,
    DocumentEncoder,
    WrittenDocuments,
    month_of,
    train_dictionary,
)
from service.db.rows import DecisionRow
from service.services.audit.batch import cancel_and_wait

__all__ = ["DocumentCompression"]

logger = logging.getLogger("service.audit")
# zstd's trainer wants samples many times the dictionary's size: below this, keep collecting (up to 8 x samples).
MIN_TRAINING_BYTES = 8 * DICTIONARY_BYTES


class DocumentCompression:
    """A writer's encoder, what it has stored, and the training of its dictionary."""

    def __init__(self, engine: AsyncEngine, *, samples: int, clock: Callable[[], datetime]) -> None:
        if samples < 0:
            raise ValueError(f"dictionary samples must not be negative, got {samples}")
        self.engine = engine
        self.samples = samples
        self.clock = clock
        self.encoder = DocumentEncoder()
        self.written = WrittenDocuments()
        self._collected: list[str] = []
        self._collected_bytes = 0
        self._seen: set[int] = set()  # ids of the answer texts collected (the engine's memo hands out the same one)
        self._loaded = False
        self._training: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def dictionary(self) -> Dictionary | None:
        return self.encoder.dictionary

    async def load(self) -> None:
        """Use the newest stored dictionary, if any (once; a failure leaves plain zstd and tries again later)."""
        if self._loaded:
            return
        async with self.engine.connect() as conn:
            found = await latest_dictionary(conn)
        self._loaded = True
        if found is not None:
            self._use(found)

    async def prepare(self, rows: Sequence[DecisionRow]) -> None:
        """Hash and compress the batch's texts in a worker thread before its transaction opens."""
        texts = [(text, month_of(row.created_at)) for row in rows for text in (row.profile, row.recommendation)]
        await asyncio.to_thread(self.encoder.prepare, texts, self.written)

    def committed(self, rows: Sequence[DecisionRow]) -> None:
        """The batch holding ``rows`` committed: its documents are stored; collect answers to train on."""
        self.encoder.forget_prepared()
        self.written.commit()
        if self.dictionary is not None or self.samples == 0 or self._training is not None or not self._loaded:
            return
        for row in rows:
            if id(row.recommendation) not in self._seen:
                self._seen.add(id(row.recommendation))
                self._collected.append(row.recommendation)
                self._collected_bytes += len(row.recommendation)
        if len(self._collected) < self.samples:
            return
        if self._collected_bytes >= MIN_TRAINING_BYTES:
            self._training = asyncio.create_task(self._train(), name="audit-dictionary-training")
        elif len(self._collected) >= self.samples * 8:  # answers this small gain nothing from a dictionary
            self.samples, self._collected, self._seen = 0, [], set()

    def rolled_back(self) -> None:
        self.encoder.forget_prepared()
        self.written.rollback()

    async def stop(self) -> None:
        await cancel_and_wait(self._training)

    async def _train(self) -> None:
        samples = list(dict.fromkeys(self._collected))
        self._collected, self._seen, self._collected_bytes = [], set(), 0
        stored: Dictionary | None
        try:
            content = await asyncio.to_thread(train_dictionary, samples)
            async with write_transaction(self.engine) as conn:
                stored = await latest_dictionary(conn) or await add_dictionary(conn, content, now=self.clock())
        except IntegrityError:  # another writer stored its own first: use that one
            async with self.engine.connect() as conn:
                stored = await latest_dictionary(conn)
        except Exception as exc:  # an outage or a failed training: plain zstd, as before
            logger.warning("training the audit documents' dictionary failed: %s", exc)
            return
        if stored is not None:
            self._use(stored)
            logger.info("audit documents: compressing with dictionary %d", stored.id)

    def _use(self, dictionary: Dictionary) -> None:
        self.encoder = DocumentEncoder(dictionary)
        self._collected, self._seen, self._collected_bytes = [], set(), 0
