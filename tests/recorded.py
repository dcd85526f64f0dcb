"""Decisions as another engine recorded them: copies of an audited decision written through the repository with
another ``engine_version`` (None: recorded before engine versions were kept) and, to play an engine that answered
otherwise, other stored values."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from storedrows import append_decisions
from uuid_utils.compat import uuid7

from service.db.connection import create_engine, write_transaction
from service.db.repository import AuditRepository
from service.settings import Settings

__all__ = ["record_copies", "record_copy", "with_leaf"]


def with_leaf(recommendation: str, path: str, value: Any) -> str:
    """``recommendation`` (JSON) with the leaf at the dotted ``path`` set to ``value``; the path must exist."""
    data = msgspec.json.decode(recommendation)
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    assert leaf in node, f"{path} is not in the recommendation"
    node[leaf] = value
    return msgspec.json.encode(data).decode()


async def record_copy(database_url: str, decision_id: str, *, engine_version: str | None, **changes: Any) -> str:
    """Store a copy of decision ``decision_id`` (new id, now) recorded by ``engine_version``, with ``changes`` to
    its stored fields; the copy's id."""
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.connect() as conn:
            row = await AuditRepository(conn).get_decision(uuid.UUID(decision_id))
        assert row is not None, decision_id
        copy = dataclasses.replace(
            row, id=uuid7(), created_at=datetime.now(UTC), engine_version=engine_version, **changes
        )
        async with write_transaction(engine) as conn:
            await append_decisions(conn, [copy])
    finally:
        await engine.dispose()
    return str(copy.id)


async def record_copies(database_url: str, decision_id: str, count: int) -> None:
    """Store ``count`` copies of decision ``decision_id`` (new ids, now), as this engine recorded it: a history
    long enough to keep impact analysis busy."""
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.connect() as conn:
            row = await AuditRepository(conn).get_decision(uuid.UUID(decision_id))
        assert row is not None, decision_id
        now = datetime.now(UTC)
        copies = [dataclasses.replace(row, id=uuid7(), created_at=now) for _ in range(count)]
        for start in range(0, count, 5000):
            async with write_transaction(engine) as conn:
                await append_decisions(conn, copies[start : start + 5000])
    finally:
        await engine.dispose()
