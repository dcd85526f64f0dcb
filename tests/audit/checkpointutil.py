"""Helpers of the signed-checkpoint tests: keys, a history checkpointed to a witness, tampering, the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditutil import decision, unprotect
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.cli import main
from service.db import AuditRepository, DecisionRow
from service.db.chain import chain_hash
from service.db.connection import write_transaction
from service.services.audit.checkpoints import Checkpoints
from service.services.audit.publisher import CheckpointPublisher
from service.services.audit.signing import CheckpointSigner
from service.services.audit.witness import Witness
from service.settings import get_settings

T1 = datetime(2026, 12, 3, 12, 0, 0, 250000, tzinfo=UTC)


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    signer: CheckpointSigner
    pem: bytes = field(repr=False)  # the private key's PEM, to look for where it must not be


def make_key(directory: Path, name: str) -> KeyPair:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(pem)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return KeyPair(private, public, CheckpointSigner.from_file(private), pem)


async def append_on(engine: AsyncEngine, chain: int, rows: Sequence[DecisionRow]) -> None:
    """Append ``rows`` to ``chain`` as a writer holding it does (its head row created first)."""
    async with write_transaction(engine) as conn:
        repo = AuditRepository(conn)
        await repo.ensure_chain_head(chain)
        await repo.append_decisions(rows, await repo.lock_chain_head(chain))


async def checkpoint(engine: AsyncEngine, at: datetime, signer: CheckpointSigner | None, witness: Witness) -> int:
    """Record a checkpoint at ``at`` signed by ``signer`` and publish what the witness lacks; its seq."""
    publisher = CheckpointPublisher(engine, witness)
    checkpoints = Checkpoints(engine, every_s=60, clock=lambda: at, signer=signer, publisher=publisher)
    recorded = await checkpoints.record(due_after_s=0)
    assert recorded is not None
    await publisher.publish_pending()
    return recorded.seq


async def build_history(
    engine: AsyncEngine, witness: Witness, first: CheckpointSigner, second: CheckpointSigner
) -> None:
    """Chain 1: seq 1..3, chain 2: seq 1..3, checkpoint 1 (signed by ``first``); chain 1: seq 4..5, checkpoint 2
    (signed by ``second``); chain 1: seq 6, after the newest checkpoint (the window)."""
    await append_on(engine, 1, [decision(n) for n in range(3)])
    await append_on(engine, 2, [decision(100 + n) for n in range(3)])
    assert await checkpoint(engine, T1, first, witness) == 1
    await append_on(engine, 1, [decision(n) for n in range(3, 5)])
    assert await checkpoint(engine, T1 + timedelta(minutes=1), second, witness) == 2
    await append_on(engine, 1, [decision(6)])


async def tamper(engine: AsyncEngine, *statements: str, **params: Any) -> None:
    """Run ``statements`` behind the append-only triggers' back, as the database owner or a superuser can."""
    postgres = engine.dialect.name == "postgresql"
    if not postgres:
        await unprotect(engine)
    async with engine.begin() as conn:
        if postgres:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await conn.execute(text(statement), params)


async def rehash_chain(engine: AsyncEngine, chain: int) -> None:
    """Recompute every hash of ``chain`` from its rows as they are now, and move its head row to match: a rewrite
    that leaves the database consistent with itself."""
    async with engine.connect() as conn:
        links = [link async for link in AuditRepository(conn).stream_chain() if link.chain == chain]
    statements, params = [], {}
    prev = links[0].prev_hash
    for n, link in enumerate(links):
        row_hash = chain_hash(link.seq, prev, link.decision)
        statements.append(
            f"UPDATE decisions SET prev_hash = :p{n}, row_hash = :h{n} WHERE chain = {chain} AND seq = {link.seq}"
        )
        params |= {f"p{n}": bytes.fromhex(prev), f"h{n}": bytes.fromhex(row_hash)}
        prev = row_hash
    statements.append(f"UPDATE audit_chain_head SET row_hash = :head WHERE id = {chain}")
    await tamper(engine, *statements, **params, head=prev)


async def advisor(database_url: str, *args: str) -> Result:
    """``advisor ARGS`` on ``database_url``, in a thread (the CLI runs its own event loop)."""

    def invoke() -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(main, list(args), env={"ADVISOR_DATABASE_URL": database_url})
        finally:
            get_settings.cache_clear()

    return await asyncio.to_thread(invoke)


def verify_args(sources: Sequence[str], *keys: KeyPair) -> list[str]:
    args = ["audit", "verify"]
    for source in sources:
        args += ["--checkpoints", source]
    for key in keys:
        args += ["--public-key", str(key.public)]
    return args
