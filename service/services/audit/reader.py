"""The audit reader: read-only queries on the stored decisions and rulesets, for the API and the services."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.archive_store import ArchiveRecord, archived_months
from service.db.partitions import next_month
from service.db.repository import AuditRepository, DecisionRow, ListedDecision, RulesetRow, RulesetSummary
from service.services.audit.archive import month_of_decision_id
from service.services.audit.errors import DEFAULT_RETRY_AFTER_S, translate_unavailable
from service.services.audit.witness import CheckpointCopy, as_copy


class AuditReader:
    """Read-only queries; each opens a connection for its duration and never writes.

    An unreachable database raises ``AuditUnavailable``.
    """

    def __init__(self, engine: AsyncEngine, *, retry_after_s: int = DEFAULT_RETRY_AFTER_S) -> None:
        self.engine = engine
        self.retry_after_s = retry_after_s

    async def decision(self, decision_id: uuid.UUID) -> DecisionRow | None:
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                return await AuditRepository(conn).get_decision(decision_id)

    async def archive_holding(self, decision_id: uuid.UUID) -> ArchiveRecord | None:
        """The archive of the month a decision not in the database was made in, if that month was archived.

        A UUIDv7 carries the millisecond it was made; the decision's ``created_at`` (its partition) was taken
        just after, so it is that month or, across midnight of a month's last day, the next one."""
        month = month_of_decision_id(decision_id)
        if month is None:
            return None
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                archived = {record.month: record for record in await archived_months(conn)}
        return archived.get(month) or archived.get(next_month(month))

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
    ) -> list[ListedDecision]:
        with translate_unavailable(self.retry_after_s):
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

    async def checkpoints(self, *, after: int, limit: int) -> list[CheckpointCopy]:
        """Up to ``limit`` checkpoints after seq ``after``, oldest first, as the witness holds them."""
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                stored = await AuditRepository(conn).checkpoints_after(after, limit=limit)
        return [as_copy(checkpoint) for checkpoint in stored]

    async def rulesets(self) -> list[RulesetSummary]:
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                return await AuditRepository(conn).list_rulesets()

    async def ruleset(self, sha256: str) -> RulesetRow | None:
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                return await AuditRepository(conn).get_ruleset(sha256)

    async def ruleset_by_version(self, version: str) -> RulesetRow | None:
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                return await AuditRepository(conn).get_ruleset_by_version(version)

    async def ping(self) -> None:
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                await AuditRepository(conn).ping()
