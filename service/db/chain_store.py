"""The hash chains' SQL: claiming a chain, locking and reading heads, appending decisions, streaming a chain,
and the checkpoints that bind the chains (``service.db.chain`` says how hashes are computed)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.chain import ChainHead, chain_hash, genesis_hash
from service.db.chain_rows import STORED_FIELDS, STREAM_COLUMNS, chained_with_texts
from service.db.document_store import UnreadableDocument, documents_to_store
from service.db.documents import DocumentEncoder, StoredDocument, TextCache, WrittenDocuments
from service.db.errors import is_database_unavailable
from service.db.rows import ChainedDecision, DecisionRow
from service.db.tables import audit_chain_head, audit_documents, decisions

__all__ = ["CHAIN_CLAIM_LOCK_CLASS", "PG_APPEND_ROW_TYPE", "ChainQueries"]

DocumentKey = tuple[int, bytes]
_PLAIN = DocumentEncoder()  # no dictionary: for callers that bring no encoder of their own

_INSERT_DECISIONS = decisions.insert().returning(decisions.c.id)
_INSERT_DOCUMENTS_SQLITE = sqlite_insert(audit_documents).on_conflict_do_nothing()
# The composite type the writer sends decisions as (migration 0009: the types of 0005 to 0007 stay for the releases
# before, which may still run on the schema they were made for).
PG_APPEND_ROW_TYPE = "decision_append_row_v4"
# The attributes of that type, in order: the columns _pg_row fills.
_PG_APPEND_COLUMNS = (
    "created_at",
    "id",
    "seq",
    "instances",
    "chain",
    "ruleset_sha256",
    "prev_hash",
    "row_hash",
    "profile_sha256",
    "recommendation_sha256",
    "ruleset_version",
    "caller",
    "request_id",
    "family",
    "instance_type",
    "scaling_method",
    "engine_version",
    "client_request_id",
)
# The rows and their new documents go in only if the head moves, i.e. only if it still is where their hashes were
# chained from. Parameters: the rows as one array of PG_APPEND_ROW_TYPE, the new head's seq and hash, the expected
# head's, the chain, then the new documents as one array per column.
_PG_APPEND_DECISIONS = (
    "WITH moved AS (UPDATE audit_chain_head SET seq = $2, row_hash = $3 "
    "WHERE id = $6 AND seq = $4 AND row_hash = $5 RETURNING 1), "
    "docs AS (INSERT INTO audit_documents (month, sha256, codec, dictionary, body) "
    "SELECT * FROM unnest($7::integer[], $8::bytea[], $9::smallint[], $10::smallint[], $11::bytea[]) "
    "WHERE EXISTS (SELECT FROM moved) ON CONFLICT DO NOTHING), "
    "new AS (INSERT INTO decisions ({columns}) SELECT u.* FROM unnest($1::{row_type}[]) AS u "
    "WHERE EXISTS (SELECT FROM moved) RETURNING 1) "
    "SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM moved)"
).format(row_type=PG_APPEND_ROW_TYPE, columns=", ".join(_PG_APPEND_COLUMNS))
# The first key of the session advisory locks by which a writer holds its chain (the second is the chain).
CHAIN_CLAIM_LOCK_CLASS = 0x61756469  # "audi"


class ChainQueries:
    """The hash-chain queries of ``AuditRepository`` (on its connection; never commits)."""

    __slots__ = ()
    _conn: AsyncConnection

    async def claim_chain(self, *, max_chains: int, preferred: int | None = None) -> int | None:
        """Postgres: hold a chain for as long as this connection lives (a session advisory lock), so no other
        writer that claims chains appends to it meanwhile; the chain, or None if all ``max_chains`` are held.

        ``preferred`` is tried first (the chain this writer held before its connection was lost). The claim only
        keeps writers apart, it does not make appending safe: every append still locks or compares its chain's
        head row, so a chain shared anyway (an older release on chain 1) stays one unforked chain.
        """
        order = list(range(1, max_chains + 1))
        if preferred is not None and 1 <= preferred <= max_chains:
            order.remove(preferred)
            order.insert(0, preferred)
        for chain in order:
            held = await self._conn.execute(
                text("SELECT pg_try_advisory_lock(:class, :chain)"),
                {"class": CHAIN_CLAIM_LOCK_CLASS, "chain": chain},
            )
            if held.scalar_one():
                return chain
        return None

    async def ensure_chain_head(self, chain: int) -> None:
        """Create ``chain``'s head row (seq 0, its genesis hash) unless it exists."""
        values = {"id": chain, "seq": 0, "row_hash": genesis_hash(chain)}
        if self._conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            await self._conn.execute(pg_insert(audit_chain_head).values(values).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            await self._conn.execute(sqlite_insert(audit_chain_head).values(values).on_conflict_do_nothing())

    async def lock_chain_head(self, chain: int = 1) -> ChainHead:
        """The end of ``chain``, locked until the transaction ends.

        Postgres: ``SELECT ... FOR UPDATE`` on the chain's ``audit_chain_head`` row, so concurrent appenders to the
        same chain (in any process) queue here and each sees the head the previous one committed. SQLite has no row
        locks (the clause is dropped): open the transaction with ``BEGIN IMMEDIATE`` (``write_transaction``) for
        the same effect; within one plain transaction the unique ``(chain, seq)`` still refuses a fork.
        """
        query = (
            select(audit_chain_head.c.seq, audit_chain_head.c.row_hash)
            .where(audit_chain_head.c.id == chain)
            .with_for_update()
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            raise RuntimeError(f"audit_chain_head has no row for chain {chain}: create it (ensure_chain_head) first")
        return ChainHead(seq=int(row.seq), row_hash=row.row_hash, chain=chain)

    async def get_chain_head(self, chain: int = 1) -> ChainHead | None:
        """The recorded end of ``chain``, without locking; None if its head row is missing."""
        query = select(audit_chain_head.c.seq, audit_chain_head.c.row_hash).where(audit_chain_head.c.id == chain)
        row = (await self._conn.execute(query)).first()
        return None if row is None else ChainHead(seq=int(row.seq), row_hash=row.row_hash, chain=chain)

    async def get_chain_heads(self) -> dict[int, ChainHead]:
        """Every chain's recorded end, by chain."""
        query = select(audit_chain_head.c.id, audit_chain_head.c.seq, audit_chain_head.c.row_hash)
        return {
            int(row.id): ChainHead(seq=int(row.seq), row_hash=row.row_hash, chain=int(row.id))
            for row in await self._conn.execute(query)
        }

    async def append_decisions(
        self,
        rows: Sequence[DecisionRow],
        head: ChainHead,
        *,
        encoder: DocumentEncoder | None = None,
        written: WrittenDocuments | None = None,
    ) -> list[ChainedDecision]:
        """Insert ``rows`` in order after ``head`` (as returned by ``lock_chain_head`` in this transaction), with
        their profiles and answers as documents (``service.db.documents``: compressed by ``encoder``, none that
        ``written`` knows are stored).

        Each row gets the next ``seq`` of ``head.chain``, the previous row's hash as ``prev_hash`` and its own
        ``row_hash``; the head row is moved to the last one. Postgres: one statement on asyncpg
        (``_append_postgres``). SQLite: SQLAlchemy's "insertmanyvalues" turns the executemany into multi-row
        INSERT statements, compiled once and cached (``RETURNING id`` selects that path; the ids only check that
        every row went in).
        """
        if not rows:
            return []
        chained = _chained(rows, head)
        keys, documents = documents_to_store(rows, encoder or _PLAIN, written)
        if self._conn.dialect.name == "postgresql":
            inserted, moved = await self._append_postgres(chained, keys, documents, head, in_transaction=True)
        else:
            inserted, moved = await self._append_portable(chained, keys, documents, head)
        if moved != 1:
            raise RuntimeError(
                f"the head of audit chain {head.chain} is no longer at seq {head.seq}: lock it before appending"
            )
        if inserted != len(rows):  # pragma: no cover - a driver bug, never an expected state
            raise RuntimeError(f"inserted {inserted} decisions out of {len(rows)}")
        if written is not None:
            written.stage([(d.month, d.sha256) for d in documents])
        return chained

    async def append_decisions_if_head(
        self,
        rows: Sequence[DecisionRow],
        head: ChainHead,
        *,
        encoder: DocumentEncoder | None = None,
        written: WrittenDocuments | None = None,
    ) -> list[ChainedDecision] | None:
        """Postgres only: append ``rows`` after ``head`` without locking it first, in one statement that commits on
        its own (the connection must not be in a transaction): one round trip instead of four.

        The rows are stored only if the chain still ends at ``head`` when the statement takes the head row's lock
        (another writer may have moved it); otherwise nothing is stored and the answer is None.
        """
        if not rows:
            return []
        chained = _chained(rows, head)
        keys, documents = documents_to_store(rows, encoder or _PLAIN, written)
        inserted, moved = await self._append_postgres(chained, keys, documents, head, in_transaction=False)
        if moved == 0:
            return None
        if inserted != len(rows):  # pragma: no cover - a driver bug, never an expected state
            raise RuntimeError(f"inserted {inserted} decisions out of {len(rows)}")
        if written is not None:
            written.stage([(d.month, d.sha256) for d in documents])
        return chained

    async def _append_portable(
        self,
        chained: list[ChainedDecision],
        keys: list[tuple[DocumentKey, DocumentKey]],
        documents: list[StoredDocument],
        head: ChainHead,
    ) -> tuple[int, int]:
        if documents:
            await self._conn.execute(_INSERT_DOCUMENTS_SQLITE, [d.as_values() for d in documents])
        params = [
            {name: getattr(c.decision, name) for name in STORED_FIELDS}
            | {
                "chain": head.chain,
                "seq": c.seq,
                "prev_hash": c.prev_hash,
                "row_hash": c.row_hash,
                "profile_sha256": profile[1].hex(),
                "recommendation_sha256": recommendation[1].hex(),
            }
            for c, (profile, recommendation) in zip(chained, keys, strict=True)
        ]
        result = await self._conn.execute(_INSERT_DECISIONS, params)
        inserted = len(result.all())
        new_head = chained[-1].head
        moved = await self._conn.execute(
            update(audit_chain_head)
            .where(
                audit_chain_head.c.id == head.chain,
                audit_chain_head.c.seq == head.seq,
                audit_chain_head.c.row_hash == head.row_hash,
            )
            .values(seq=new_head.seq, row_hash=new_head.row_hash)
        )
        return inserted, moved.rowcount

    async def _append_postgres(
        self,
        chained: list[ChainedDecision],
        keys: list[tuple[DocumentKey, DocumentKey]],
        documents: list[StoredDocument],
        head: ChainHead,
        *,
        in_transaction: bool,
    ) -> tuple[int, int]:
        """One statement on asyncpg itself: the rows as one array of ``PG_APPEND_ROW_TYPE`` and the documents as
        one array per column, unnested into ``decisions`` and ``audit_documents``, and the head moved.

        Measured several times cheaper per row than SQLAlchemy's multi-row VALUES, whose per-row, per-column
        parameter processing in Python dominated the audit writer's CPU time; asyncpg encodes arrays natively.
        """
        driver = (await self._conn.get_raw_connection()).driver_connection
        if driver is None or driver.is_in_transaction() != in_transaction:
            # SQLAlchemy's asyncpg adapter begins lazily, on its first statement (lock_chain_head): without it the
            # statement would commit on its own; with it, append_decisions_if_head would not commit.
            raise RuntimeError(
                "append_decisions runs in the caller's transaction, after lock_chain_head"
                if in_transaction
                else "append_decisions_if_head runs outside any transaction"
            )
        # Tuples, not lists: asyncpg sends a tuple as a record of the composite type, a list as a nested array.
        rows = [
            _pg_row(c, profile[1], recommendation[1])
            for c, (profile, recommendation) in zip(chained, keys, strict=True)
        ]
        new_head = chained[-1].head
        try:
            record = await driver.fetchrow(
                _PG_APPEND_DECISIONS,
                rows,
                new_head.seq,
                new_head.row_hash,
                head.seq,
                head.row_hash,
                head.chain,
                [d.month for d in documents],
                [d.sha256 for d in documents],
                [d.codec for d in documents],
                [d.dictionary for d in documents],
                [d.body for d in documents],
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            raise await self._as_sqlalchemy_error(exc) from exc
        return int(record[0]), int(record[1])

    async def _as_sqlalchemy_error(
        self, exc: asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.InternalClientError
    ) -> sa_exc.DBAPIError:
        """The error SQLAlchemy would have raised for ``exc``, so callers see one family of errors on any path
        (the writer retries on ``IntegrityError`` and answers 503 for an unreachable database).

        ``InternalClientError`` is asyncpg's protocol out of step with the server, seen when the server terminated
        the connection while it sat idle: the connection is as good as dropped.
        """
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            return sa_exc.IntegrityError(_PG_APPEND_DECISIONS, None, exc)
        if isinstance(exc, asyncpg.InternalClientError) or is_database_unavailable(exc):
            with contextlib.suppress(Exception):  # it may be gone already; the error to report is ``exc``
                await self._conn.invalidate(exc)  # a dropped connection must not go back to the pool
            return sa_exc.OperationalError(_PG_APPEND_DECISIONS, None, exc, connection_invalidated=True)
        return sa_exc.DBAPIError(_PG_APPEND_DECISIONS, None, exc)

    async def stream_chain(
        self, *, batch_size: int = 1000, cache: TextCache | None = None
    ) -> AsyncIterator[ChainedDecision]:
        """Every decision in ``(chain, seq)`` order with its texts, fetched ``batch_size`` rows at a time (a
        server-side cursor on Postgres), so the table is never held in memory. Run it in one transaction
        (``read_snapshot``). A missing or changed document raises ``UnreadableDocument`` naming the decision, once
        the decisions before it are yielded."""
        query = (
            select(*STREAM_COLUMNS).order_by(decisions.c.chain, decisions.c.seq).execution_options(yield_per=batch_size)
        )
        texts_cache = cache if cache is not None else TextCache()
        result = await self._conn.stream(query)
        try:
            async for batch in result.partitions(batch_size):
                try:
                    links = await chained_with_texts(self._conn, batch, texts_cache)
                except UnreadableDocument as exc:
                    for link in exc.links:
                        yield link
                    raise
                for link in links:
                    yield link
        finally:
            await result.close()


def _pg_row(c: ChainedDecision, profile: bytes, recommendation: bytes) -> tuple[object, ...]:
    """A decision as a record of ``PG_APPEND_ROW_TYPE``, in its attribute order (migration 0009)."""
    d = c.decision
    return (
        d.created_at,
        d.id,
        c.seq,
        d.instances,
        c.chain,
        bytes.fromhex(d.ruleset_sha256),
        bytes.fromhex(c.prev_hash),
        bytes.fromhex(c.row_hash),
        profile,
        recommendation,
        d.ruleset_version,
        d.caller,
        d.request_id,
        d.family,
        d.instance_type,
        d.scaling_method,
        d.engine_version,
        d.client_request_id,
    )


def _chained(rows: Sequence[DecisionRow], head: ChainHead) -> list[ChainedDecision]:
    """``rows`` numbered and hashed after ``head``, in order, on ``head.chain``."""
    chained: list[ChainedDecision] = []
    seq, prev_hash, chain = head.seq, head.row_hash, head.chain
    for row in rows:
        seq += 1
        row_hash = chain_hash(seq, prev_hash, row)
        chained.append(ChainedDecision(seq=seq, prev_hash=prev_hash, row_hash=row_hash, decision=row, chain=chain))
        prev_hash = row_hash
    return chained
