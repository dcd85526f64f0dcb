"""Stored rulesets: content-addressed (sha256 of their files), each under the version it was activated with."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Row, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.tables import rulesets

__all__ = ["AmbiguousRulesetVersion", "RulesetQueries", "RulesetRow", "RulesetSummary"]


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


class AmbiguousRulesetVersion(Exception):
    """Several stored rulesets carry one version label, so the label names none of them: ask by sha256.

    Activation refuses a second ruleset under a stored version; a database may hold such pairs from before.
    """

    def __init__(self, version: str, sha256s: Sequence[str]) -> None:
        super().__init__(
            f"ruleset version '{version}' is ambiguous: {len(sha256s)} stored rulesets carry it "
            f"(sha256 {', '.join(sha256s)}); each is readable by its sha256"
        )
        self.version, self.sha256s = version, list(sha256s)


_SUMMARY_COLUMNS = tuple(rulesets.c[field.name] for field in fields(RulesetSummary))


class RulesetQueries:
    """The ruleset queries of ``AuditRepository`` (on its connection; never commits)."""

    __slots__ = ()
    _conn: AsyncConnection

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
        """The stored ruleset carrying this version label; AmbiguousRulesetVersion if several do."""
        rows = (await self._conn.execute(select(rulesets).where(rulesets.c.version == version).limit(2))).all()
        if len(rows) > 1:
            raise AmbiguousRulesetVersion(version, await self.ruleset_hashes(version))
        return _ruleset(rows[0]) if rows else None

    async def ruleset_hashes(self, version: str) -> list[str]:
        """The sha256 of every stored ruleset carrying this version label, oldest first (one, unless ambiguous)."""
        query = (
            select(rulesets.c.sha256)
            .where(rulesets.c.version == version)
            .order_by(rulesets.c.created_at, rulesets.c.sha256)
        )
        return list((await self._conn.scalars(query)).all())

    async def list_rulesets(self) -> list[RulesetSummary]:
        """Every stored ruleset, newest first, without the files (fetch those with ``get_ruleset``)."""
        query = select(*_SUMMARY_COLUMNS).order_by(rulesets.c.created_at.desc(), rulesets.c.sha256.desc())
        return [RulesetSummary(**row._asdict()) for row in await self._conn.execute(query)]

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
