"""All reads and writes of the audit store, with SQLAlchemy Core on an ``AsyncConnection``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Insert, Row, Uuid, bindparam, func, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.tables import UTCDateTime, decisions, rulesets

__all__ = ["AuditRepository", "DecisionRow", "RulesetRow", "RulesetSummary"]


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One audited decision, as stored."""

    id: UUID
    created_at: datetime
    ruleset_sha256: str
    ruleset_version: str
    caller: str
    request_id: str
    family: str | None
    instance_type: str | None
    scaling_method: str | None
    instances: int | None
    profile: str
    recommendation: str


@dataclass(frozen=True, slots=True)
class RulesetSummary:
    """A stored ruleset without its files (what ``list_rulesets`` returns)."""

    sha256: str
    version: str
    description: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RulesetRow(RulesetSummary):
    """A stored ruleset with its files (relative path -> text)."""

    files: Mapping[str, str]


_DECISION_FIELDS = tuple(field.name for field in fields(DecisionRow))
_DECISION_COLUMNS = tuple(decisions.c[name] for name in _DECISION_FIELDS)
_SUMMARY_COLUMNS = tuple(rulesets.c[field.name] for field in fields(RulesetSummary))
_INSERT_DECISIONS = decisions.insert().returning(decisions.c.id)


class AuditRepository:
    """Reads and writes on one ``AsyncConnection``.

    It never commits or rolls back: the caller owns the transaction (e.g. ``async with engine.begin() as
    conn``).
    """

    __slots__ = ("_conn",)

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    async def ping(self) -> None:
        """Round-trip ``SELECT 1``; raises when the database is unreachable."""
        await self._conn.execute(select(literal(1)))

    # --- rulesets -------------------------------------------------------------------------------------------

    async def save_ruleset(
        self,
        sha256: str,
        version: str,
        description: str | None,
        files: Mapping[str, str],
        created_at: datetime,
    ) -> None:
        """Store a ruleset unless one with this ``sha256`` already exists (then nothing changes)."""
        values = {
            "sha256": sha256,
            "version": version,
            "description": description,
            "files": json.dumps(dict(files), ensure_ascii=False, sort_keys=True, separators=(",", ":")),
            "created_at": created_at,
        }
        await self._conn.execute(self._insert_ignoring_duplicates(values))

    async def get_ruleset(self, sha256: str) -> RulesetRow | None:
        row = (await self._conn.execute(select(rulesets).where(rulesets.c.sha256 == sha256))).first()
        return None if row is None else _ruleset(row)

    async def get_ruleset_by_version(self, version: str) -> RulesetRow | None:
        """The newest (by ``created_at``) ruleset carrying this version label."""
        query = (
            select(rulesets)
            .where(rulesets.c.version == version)
            .order_by(rulesets.c.created_at.desc(), rulesets.c.sha256.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else _ruleset(row)

    async def list_rulesets(self) -> list[RulesetSummary]:
        """Every stored ruleset, newest first, without the files (fetch those with ``get_ruleset``)."""
        query = select(*_SUMMARY_COLUMNS).order_by(rulesets.c.created_at.desc(), rulesets.c.sha256.desc())
        return [RulesetSummary(**row._asdict()) for row in await self._conn.execute(query)]

    # --- decisions ------------------------------------------------------------------------------------------

    async def add_decisions(self, rows: Sequence[DecisionRow]) -> None:
        """Insert decisions as multi-row ``INSERT ... VALUES (...), (...), ...`` statements.

        SQLAlchemy's "insertmanyvalues" turns this executemany into one statement per up to 1000 rows (the
        engine's ``insertmanyvalues_page_size``; 12 000 bind parameters, under both Postgres' and SQLite's
        limits), compiled once and cached, so it stays fast at any batch size; a literal ``.values([...])`` is
        recompiled on every call and measured 5-8x slower. ``RETURNING id`` is what selects that path on both
        dialects; the ids are only used to check that every row went in.
        """
        if not rows:
            return
        params = [{name: getattr(row, name) for name in _DECISION_FIELDS} for row in rows]
        result = await self._conn.execute(_INSERT_DECISIONS, params)
        inserted = len(result.all())
        if inserted != len(rows):  # pragma: no cover - a driver bug, never an expected state
            raise RuntimeError(f"inserted {inserted} decisions out of {len(rows)}")

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

    async def count_decisions(self) -> int:
        count = await self._conn.scalar(select(func.count()).select_from(decisions))
        return int(count or 0)

    # --- helpers --------------------------------------------------------------------------------------------

    def _insert_ignoring_duplicates(self, values: Mapping[str, Any]) -> Insert:
        dialect = self._conn.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(rulesets).values(values).on_conflict_do_nothing(index_elements=["sha256"])
        if dialect == "sqlite":
            return sqlite.insert(rulesets).values(values).on_conflict_do_nothing(index_elements=["sha256"])
        raise NotImplementedError(f"unsupported dialect {dialect}")


def _ruleset(row: Row[Any]) -> RulesetRow:
    data = row._asdict()
    data["files"] = json.loads(data["files"])
    return RulesetRow(**data)
