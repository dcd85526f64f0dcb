"""All reads and writes of the audit store, with SQLAlchemy Core on an ``AsyncConnection``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Uuid, and_, bindparam, delete, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.chain_rows import document_keys
from service.db.chain_store import PG_APPEND_ROW_TYPE, ChainQueries
from service.db.checkpoint_store import CheckpointQueries
from service.db.document_store import load_texts
from service.db.rows import ChainedDecision, DecisionRow, IdempotencyRecord, ListedDecision, StoredCheckpoint
from service.db.ruleset_store import AmbiguousRulesetVersion, RulesetQueries, RulesetRow, RulesetSummary
from service.db.tables import UTCDateTime, decisions, idempotency_keys

__all__ = [
    "PG_APPEND_ROW_TYPE",
    "AmbiguousRulesetVersion",
    "AuditRepository",
    "ChainedDecision",
    "DecisionRow",
    "IdempotencyRecord",
    "ListedDecision",
    "RulesetRow",
    "RulesetSummary",
    "StoredCheckpoint",
]

_STORED_FIELDS = tuple(f.name for f in fields(DecisionRow) if f.name not in ("profile", "recommendation"))
_STORED_COLUMNS = (
    *(decisions.c[name] for name in _STORED_FIELDS),
    decisions.c.profile_sha256,
    decisions.c.recommendation_sha256,
)
_CREATED_AT = _STORED_FIELDS.index("created_at")
# How far a decision's created_at may lie from the time its id carries (clock steps, uuid7's monotonic counter).
ID_TIME_WINDOW = timedelta(seconds=5)


def uuid7_time(value: UUID) -> datetime | None:
    """The millisecond a UUIDv7 was made (its first 48 bits, Unix time); None for another version."""
    if value.version != 7:
        return None
    return datetime.fromtimestamp((value.int >> 80) / 1000, tz=UTC)


_LISTED_FIELDS = tuple(f.name for f in fields(ListedDecision))
_LISTED_COLUMNS = tuple(decisions.c[name] for name in _LISTED_FIELDS)
_IDEMPOTENCY_FIELDS = tuple(field.name for field in fields(IdempotencyRecord))
_IDEMPOTENCY_COLUMNS = tuple(idempotency_keys.c[name] for name in _IDEMPOTENCY_FIELDS)


class AuditRepository(RulesetQueries, ChainQueries, CheckpointQueries):
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

    async def get_decision(self, decision_id: UUID) -> DecisionRow | None:
        """The decision with this id, found through the primary key ``(created_at, id)``: the service makes each id
        (a UUIDv7, which carries the millisecond it was made) just before it stamps ``created_at``, so
        ``created_at`` lies within ``ID_TIME_WINDOW`` of the id's time. None for an id that is not a UUIDv7."""
        made = uuid7_time(decision_id)
        if made is None:
            return None
        query = select(*_STORED_COLUMNS).where(
            decisions.c.id == decision_id,
            decisions.c.created_at >= made - ID_TIME_WINDOW,
            decisions.c.created_at < made + ID_TIME_WINDOW,
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else (await self._with_texts([row]))[0]

    async def _with_texts(self, rows: Sequence[Sequence[Any]]) -> list[DecisionRow]:
        """Selected ``_STORED_COLUMNS`` rows as decisions, with their profiles and answers read and decoded."""
        keyed = [(document_keys(row[_CREATED_AT], row[-2], row[-1]), row) for row in rows]
        texts = await load_texts(self._conn, (key for pair, _ in keyed for key in pair))
        return [
            DecisionRow(
                **dict(zip(_STORED_FIELDS, row, strict=False)),
                profile=texts[profile],
                recommendation=texts[recommendation],
            )
            for (profile, recommendation), row in keyed
        ]

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
    ) -> list[ListedDecision]:
        """Up to ``limit`` decisions without their texts, newest first (``created_at`` then ``id``, both descending).

        ``after`` is the ``(created_at, id)`` of the last row of the previous page: only rows strictly after
        it in that order are returned. ``since`` is inclusive, ``until`` exclusive; the other filters are
        equalities.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        conditions: list[ColumnElement[bool]] = []
        if after is not None:
            after_created_at, after_id = after
            # Implied by the row comparison below, but usable by the per-filter indexes (filter, created_at) too.
            conditions.append(decisions.c.created_at <= after_created_at)
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
            select(*_LISTED_COLUMNS)
            .where(*conditions)
            .order_by(decisions.c.created_at.desc(), decisions.c.id.desc())
            .limit(limit)
        )
        return [ListedDecision(*row) for row in await self._conn.execute(query)]

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
                select(*_IDEMPOTENCY_COLUMNS, *_STORED_COLUMNS)
                .join_from(
                    idempotency_keys,
                    decisions,
                    and_(
                        decisions.c.created_at == idempotency_keys.c.decision_created_at,
                        decisions.c.id == idempotency_keys.c.decision_id,
                    ),
                )
                .where(tuple_(idempotency_keys.c.caller, idempotency_keys.c.key).in_(chunk))
            )
            selected = (await self._conn.execute(query)).all()
            records = [IdempotencyRecord(*row[: len(_IDEMPOTENCY_FIELDS)]) for row in selected]
            stored = [tuple(row[len(_IDEMPOTENCY_FIELDS) :]) for row in selected]
            for record, decision in zip(records, await self._with_texts(stored), strict=True):
                found[(record.caller, record.key)] = (record, decision)
        return found

    async def add_idempotency_keys(self, records: Sequence[IdempotencyRecord]) -> None:
        """Insert keys; a ``(caller, key)`` already stored is an ``IntegrityError`` (delete an expired one first)."""
        if records:
            params = [{name: getattr(r, name) for name in _IDEMPOTENCY_FIELDS} for r in records]
            await self._conn.execute(idempotency_keys.insert(), params)

    async def delete_idempotency_keys(self, keys: Sequence[tuple[str, str]], *, expired_at: datetime) -> None:
        """Delete these keys where they expired at or before ``expired_at`` (a key another writer took afresh
        meanwhile stays)."""
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            await self._conn.execute(
                delete(idempotency_keys).where(
                    tuple_(idempotency_keys.c.caller, idempotency_keys.c.key).in_(chunk),
                    idempotency_keys.c.expires_at <= expired_at,
                )
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
