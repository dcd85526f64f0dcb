"""The audit store's two doors: the writer (the one commit boundary for decisions) and the reader."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.repository import AuditRepository, DecisionRow, RulesetRow, RulesetSummary

__all__ = ["AuditReader", "AuditWriter"]


class AuditWriter:
    """Commits audit rows; ``write`` returns only once its row is durable."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write(self, row: DecisionRow) -> None:
        async with self.engine.begin() as conn:
            await AuditRepository(conn).add_decisions([row])


class AuditReader:
    """Read-only queries; each opens a connection for its duration and never writes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def decision(self, decision_id: uuid.UUID) -> DecisionRow | None:
        async with self.engine.connect() as conn:
            return await AuditRepository(conn).get_decision(decision_id)

    async def decisions(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        family: str | None,
        scaling_method: str | None,
        ruleset_version: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[DecisionRow]:
        async with self.engine.connect() as conn:
            return await AuditRepository(conn).list_decisions(
                limit=limit,
                after=after,
                family=family,
                scaling_method=scaling_method,
                ruleset_version=ruleset_version,
                since=since,
                until=until,
            )

    async def rulesets(self) -> list[RulesetSummary]:
        async with self.engine.connect() as conn:
            return await AuditRepository(conn).list_rulesets()

    async def ruleset(self, sha256: str) -> RulesetRow | None:
        async with self.engine.connect() as conn:
            return await AuditRepository(conn).get_ruleset(sha256)

    async def ruleset_by_version(self, version: str) -> RulesetRow | None:
        async with self.engine.connect() as conn:
            return await AuditRepository(conn).get_ruleset_by_version(version)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await AuditRepository(conn).ping()
