"""All reads and writes of the audit store, with SQLAlchemy Core on an ``AsyncConnection``."""

from __future__ import annotations

import contextlib
import operator
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from uuid import UUID

import asyncpg
from sqlalchemy import ColumnElement, Uuid, bindparam, delete, literal, select, tuple_, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.chain import ChainHead, chain_hash
from service.db.errors import is_database_unavailable
from service.db.rows import ChainedDecision, DecisionRow, IdempotencyRecord
from service.db.ruleset_store import AmbiguousRulesetVersion, RulesetQueries, RulesetRow, RulesetSummary
from service.db.tables import UTCDateTime, audit_chain_head, decisions, idempotency_keys

__all__ = [
    "PG_APPEND_ROW_TYPE",
    "AmbiguousRulesetVersion",
    "AuditRepository",
    "ChainedDecision",
    "DecisionRow",
    "IdempotencyRecord",
    "RulesetRow",
    "RulesetSummary",
]

CHAIN_HEAD_ID = 1


_DECISION_FIELDS = tuple(field.name for field in fields(DecisionRow))
_DECISION_COLUMNS = tuple(decisions.c[name] for name in _DECISION_FIELDS)
_INSERT_DECISIONS = decisions.insert().returning(decisions.c.id)
_CHAIN_COLUMNS = (decisions.c.seq, decisions.c.prev_hash, decisions.c.row_hash)
_PG_APPEND_COLUMNS = (*_DECISION_FIELDS, "seq", "prev_hash", "row_hash")
# The composite type the writer sends decisions as (migration 0007; the types of 0005 and 0006, without
# client_request_id, stay for the releases before, which may still run on this schema).
PG_APPEND_ROW_TYPE = "decision_append_row_v3"
# A decision's stored fields, in order: the first attributes of that type; the chain's seq, prev_hash and row_hash
# follow (_append_postgres).
_pg_append_values = operator.attrgetter(*_DECISION_FIELDS)
# The rows go in only if the head moves, i.e. only if it still is where their hashes were chained from.
# Parameters: the rows as one array of PG_APPEND_ROW_TYPE, then the new head's seq and hash, then the expected head's.
_PG_APPEND_DECISIONS = (
    "WITH moved AS (UPDATE audit_chain_head SET seq = $2, row_hash = $3 "
    "WHERE id = {head_id} AND seq = $4 AND row_hash = $5 RETURNING 1), "
    "new AS (INSERT INTO decisions ({columns}) SELECT * FROM unnest($1::{row_type}[]) "
    "WHERE EXISTS (SELECT FROM moved) RETURNING 1) "
    "SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM moved)"
).format(columns=", ".join(_PG_APPEND_COLUMNS), head_id=CHAIN_HEAD_ID, row_type=PG_APPEND_ROW_TYPE)
_IDEMPOTENCY_FIELDS = tuple(field.name for field in fields(IdempotencyRecord))
_IDEMPOTENCY_COLUMNS = tuple(idempotency_keys.c[name] for name in _IDEMPOTENCY_FIELDS)


class AuditRepository(RulesetQueries):
    """Reads and writes on one ``AsyncConnection``; never commits or rolls back: the caller owns the transaction."""

    __slots__ = ("_conn",)

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    async def ping(self) -> None:
        """Round-trip ``SELECT 1``; raises when the database is unreachable."""
        await self._conn.execute(select(literal(1)))

    # --- decisions ------------------------------------------------------------------------------------------

    async def lock_chain_head(self) -> ChainHead:
        """The end of the hash chain, locked until the transaction ends.

        Postgres: ``SELECT ... FOR UPDATE`` on the one ``audit_chain_head`` row, so concurrent appenders (in any
        process) queue here and each sees the head the previous one committed. SQLite has no row locks (the
        clause is dropped): open the transaction with ``BEGIN IMMEDIATE`` (``write_transaction``) for the same
        effect; within one plain transaction the unique ``seq`` still refuses a fork.
        """
        query = (
            select(audit_chain_head.c.seq, audit_chain_head.c.row_hash)
            .where(audit_chain_head.c.id == CHAIN_HEAD_ID)
            .with_for_update()
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            raise RuntimeError("audit_chain_head has no row: the database is not migrated, or the row was deleted")
        return ChainHead(seq=int(row.seq), row_hash=row.row_hash)

    async def get_chain_head(self) -> ChainHead | None:
        """The recorded end of the chain, without locking; None if the head row is missing."""
        query = select(audit_chain_head.c.seq, audit_chain_head.c.row_hash).where(
            audit_chain_head.c.id == CHAIN_HEAD_ID
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else ChainHead(seq=int(row.seq), row_hash=row.row_hash)

    async def append_decisions(self, rows: Sequence[DecisionRow], head: ChainHead) -> list[ChainedDecision]:
        """Insert ``rows`` in order after ``head`` (as returned by ``lock_chain_head`` in this transaction).

        Each row gets the next ``seq``, the previous row's hash as ``prev_hash`` and its own ``row_hash``; the
        head row is moved to the last one. Postgres: one statement on asyncpg (``_append_postgres``). SQLite:
        multi-row ``INSERT ... VALUES (...), (...), ...`` statements: SQLAlchemy's "insertmanyvalues" turns this
        executemany into one statement per up to 1000 rows (the engine's ``insertmanyvalues_page_size``; 15 000
        bind parameters, under SQLite's limit), compiled once and cached, so it stays fast at any batch size; a
        literal ``.values([...])`` is recompiled on every call and measured 5-8x slower. ``RETURNING id`` is what
        selects that path; the ids are only used to check that every row went in.
        """
        if not rows:
            return []
        chained = _chained(rows, head)
        if self._conn.dialect.name == "postgresql":
            inserted, moved = await self._append_postgres(chained, head, in_transaction=True)
        else:
            inserted, moved = await self._append_portable(chained, head)
        if moved != 1:
            raise RuntimeError(f"the audit chain head is no longer at seq {head.seq}: lock it before appending")
        if inserted != len(rows):  # pragma: no cover - a driver bug, never an expected state
            raise RuntimeError(f"inserted {inserted} decisions out of {len(rows)}")
        return chained

    async def append_decisions_if_head(
        self, rows: Sequence[DecisionRow], head: ChainHead
    ) -> list[ChainedDecision] | None:
        """Postgres only: append ``rows`` after ``head`` without locking it first, in one statement that commits on
        its own (the connection must not be in a transaction): one round trip instead of four.

        The rows are stored only if the chain still ends at ``head`` when the statement takes the head row's lock
        (a writer in another process may have moved it); otherwise nothing is stored and the answer is None.
        """
        if not rows:
            return []
        chained = _chained(rows, head)
        inserted, moved = await self._append_postgres(chained, head, in_transaction=False)
        if moved == 0:
            return None
        if inserted != len(rows):  # pragma: no cover - a driver bug, never an expected state
            raise RuntimeError(f"inserted {inserted} decisions out of {len(rows)}")
        return chained

    async def _append_portable(self, chained: list[ChainedDecision], head: ChainHead) -> tuple[int, int]:
        params = [
            {name: getattr(c.decision, name) for name in _DECISION_FIELDS}
            | {"seq": c.seq, "prev_hash": c.prev_hash, "row_hash": c.row_hash}
            for c in chained
        ]
        result = await self._conn.execute(_INSERT_DECISIONS, params)
        inserted = len(result.all())
        new_head = chained[-1].head
        moved = await self._conn.execute(
            update(audit_chain_head)
            .where(
                audit_chain_head.c.id == CHAIN_HEAD_ID,
                audit_chain_head.c.seq == head.seq,
                audit_chain_head.c.row_hash == head.row_hash,
            )
            .values(seq=new_head.seq, row_hash=new_head.row_hash)
        )
        return inserted, moved.rowcount

    async def _append_postgres(
        self, chained: list[ChainedDecision], head: ChainHead, *, in_transaction: bool
    ) -> tuple[int, int]:
        """One statement on asyncpg itself: the rows as one array of ``PG_APPEND_ROW_TYPE``, unnested into
        ``decisions``, and the head moved.

        Measured several times cheaper per row than SQLAlchemy's multi-row VALUES, whose per-row, per-column
        parameter processing in Python dominated the audit writer's CPU time; asyncpg encodes arrays natively. One
        array of rows rather than one array per column: asyncpg inspects each element of an array parameter, so
        that is one inspection per row instead of one per value.
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
        rows = [(*_pg_append_values(c.decision), c.seq, c.prev_hash, c.row_hash) for c in chained]
        new_head = chained[-1].head
        try:
            record = await driver.fetchrow(
                _PG_APPEND_DECISIONS,
                rows,
                new_head.seq,
                new_head.row_hash,
                head.seq,
                head.row_hash,
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

    async def stream_chain(self, *, batch_size: int = 1000) -> AsyncIterator[ChainedDecision]:
        """Every decision in ``seq`` order, fetched ``batch_size`` rows at a time (a server-side cursor on
        Postgres), so the table is never held in memory. Run it in one transaction (``read_snapshot``)."""
        query = (
            select(*_CHAIN_COLUMNS, *_DECISION_COLUMNS)
            .order_by(decisions.c.seq)
            .execution_options(yield_per=batch_size)
        )
        result = await self._conn.stream(query)
        try:
            async for row in result:
                data = row._asdict()
                seq, prev_hash, row_hash = data.pop("seq"), data.pop("prev_hash"), data.pop("row_hash")
                yield ChainedDecision(
                    seq=int(seq), prev_hash=prev_hash, row_hash=row_hash, decision=DecisionRow(**data)
                )
        finally:
            await result.close()

    async def get_decision(self, decision_id: UUID) -> DecisionRow | None:
        query = select(*_DECISION_COLUMNS).where(decisions.c.id == decision_id)
        row = (await self._conn.execute(query)).first()
        return None if row is None else DecisionRow(**row._asdict())

    async def list_decisions(
        self,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None = None,
        family: str | None = None,
        scaling_method: str | None = None,
        ruleset_version: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[DecisionRow]:
        """Up to ``limit`` decisions, newest first (``created_at`` then ``id``, both descending).

        ``after`` is the ``(created_at, id)`` of the last row of the previous page: only rows strictly after
        it in that order are returned. ``since`` is inclusive, ``until`` exclusive; the other filters are
        equalities.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        conditions: list[ColumnElement[bool]] = []
        if after is not None:
            after_created_at, after_id = after
            conditions.append(
                tuple_(decisions.c.created_at, decisions.c.id)
                < tuple_(
                    bindparam("after_created_at", after_created_at, type_=UTCDateTime()),
                    bindparam("after_id", after_id, type_=Uuid(as_uuid=True)),
                )
            )
        if family is not None:
            conditions.append(decisions.c.family == family)
        if scaling_method is not None:
            conditions.append(decisions.c.scaling_method == scaling_method)
        if ruleset_version is not None:
            conditions.append(decisions.c.ruleset_version == ruleset_version)
        if since is not None:
            conditions.append(decisions.c.created_at >= since)
        if until is not None:
            conditions.append(decisions.c.created_at < until)
        query = (
            select(*_DECISION_COLUMNS)
            .where(*conditions)
            .order_by(decisions.c.created_at.desc(), decisions.c.id.desc())
            .limit(limit)
        )
        return [DecisionRow(**row._asdict()) for row in await self._conn.execute(query)]

    # --- idempotency keys -----------------------------------------------------------------------------------

    async def find_idempotency_keys(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[IdempotencyRecord, DecisionRow]]:
        """The stored records (expired or not) of these ``(caller, key)`` pairs, each with its decision."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], tuple[IdempotencyRecord, DecisionRow]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = (
                select(*_IDEMPOTENCY_COLUMNS, *_DECISION_COLUMNS)
                .join_from(idempotency_keys, decisions, decisions.c.id == idempotency_keys.c.decision_id)
                .where(tuple_(idempotency_keys.c.caller, idempotency_keys.c.key).in_(chunk))
            )
            for row in await self._conn.execute(query):
                record = IdempotencyRecord(*row[: len(_IDEMPOTENCY_FIELDS)])
                decision = DecisionRow(*row[len(_IDEMPOTENCY_FIELDS) :])
                found[(record.caller, record.key)] = (record, decision)
        return found

    async def add_idempotency_keys(self, records: Sequence[IdempotencyRecord]) -> None:
        """Insert keys; a ``(caller, key)`` already stored is an ``IntegrityError`` (delete an expired one first)."""
        if records:
            params = [{name: getattr(r, name) for name in _IDEMPOTENCY_FIELDS} for r in records]
            await self._conn.execute(idempotency_keys.insert(), params)

    async def delete_idempotency_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            await self._conn.execute(
                delete(idempotency_keys).where(tuple_(idempotency_keys.c.caller, idempotency_keys.c.key).in_(chunk))
            )

    async def purge_idempotency_keys(self, *, expired_at: datetime, limit: int) -> int:
        """Delete up to ``limit`` keys whose ``expires_at`` is at or before ``expired_at``; how many went."""
        oldest = (
            select(idempotency_keys.c.caller, idempotency_keys.c.key)
            .where(idempotency_keys.c.expires_at <= expired_at)
            .order_by(idempotency_keys.c.expires_at)
            .limit(limit)
        )
        result = await self._conn.execute(
            delete(idempotency_keys).where(tuple_(idempotency_keys.c.caller, idempotency_keys.c.key).in_(oldest))
        )
        return int(result.rowcount)


def _chained(rows: Sequence[DecisionRow], head: ChainHead) -> list[ChainedDecision]:
    """``rows`` numbered and hashed after ``head``, in order."""
    chained: list[ChainedDecision] = []
    seq, prev_hash = head.seq, head.row_hash
    for row in rows:
        seq += 1
        row_hash = chain_hash(seq, prev_hash, row)
        chained.append(ChainedDecision(seq=seq, prev_hash=prev_hash, row_hash=row_hash, decision=row))
        prev_hash = row_hash
    return chained
