"""Ruleset activations: which ruleset answers, since when, switched by whom (SQL only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CHAR, BigInteger, Column, ForeignKey, Identity, Integer, String, Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.tables import UTCDateTime, metadata

__all__ = ["ActivationRepository", "ActivationRow", "ruleset_activations"]

ACTIVATION_LOCK_KEY = 4071953280453403639  # next to the migration lock's key

ruleset_activations = Table(
    "ruleset_activations",
    metadata,
    # INTEGER on SQLite: only an INTEGER PRIMARY KEY autoincrements there.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(), primary_key=True),
    Column("sha256", CHAR(64), ForeignKey("rulesets.sha256"), nullable=False),
    Column("version", String, nullable=False),
    Column("previous_sha256", CHAR(64), nullable=True),
    Column("activated_at", UTCDateTime, nullable=False),
    Column("activated_by", String, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ActivationRow:
    id: int
    sha256: str
    version: str
    previous_sha256: str | None
    activated_at: datetime
    activated_by: str


class ActivationRepository:
    """Never commits: the caller's transaction does."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def record(
        self, *, sha256: str, version: str, previous_sha256: str | None, activated_at: datetime, activated_by: str
    ) -> int:
        result = await self.connection.execute(
            ruleset_activations.insert()
            .values(
                sha256=sha256,
                version=version,
                previous_sha256=previous_sha256,
                activated_at=activated_at,
                activated_by=activated_by,
            )
            .returning(ruleset_activations.c.id)
        )
        return int(result.scalar_one())

    async def lock(self) -> None:
        """Serialise activations across replicas (Postgres); SQLite serialises writers anyway."""
        if self.connection.dialect.name == "postgresql":
            await self.connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ACTIVATION_LOCK_KEY})

    async def latest(self) -> ActivationRow | None:
        result = await self.connection.execute(
            select(ruleset_activations).order_by(ruleset_activations.c.id.desc()).limit(1)
        )
        row = result.first()
        return ActivationRow(*row) if row else None

    async def history(self, limit: int = 100) -> list[ActivationRow]:
        result = await self.connection.execute(
            select(ruleset_activations).order_by(ruleset_activations.c.id.desc()).limit(limit)
        )
        return [ActivationRow(*row) for row in result]
