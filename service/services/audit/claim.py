"""The chain a writer appends to, and the connection it keeps for it (Postgres): claimed with a session advisory
lock on that connection, released by closing it for good."""

from __future__ import annotations

import contextlib
import logging
import os

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db.chain import ChainHead
from service.db.repository import AuditRepository
from service.services.audit.anchors import ChainAnchors
from service.services.audit.errors import translate_unavailable

__all__ = ["ChainClaim"]

logger = logging.getLogger("service.audit")


class ChainClaim:
    """The audit writer's chain claim; the writer provides these attributes."""

    engine: AsyncEngine
    retry_after_s: int
    max_chains: int
    chain: int
    anchors: ChainAnchors
    _chain_claimed: bool
    _direct: AsyncConnection | None
    _head: ChainHead | None

    async def _claim_chain(self) -> None:
        """Postgres: open the connection this writer keeps and claim a chain on it (preferring the one it held
        before, if that connection was lost), creating the chain's head row if it is new. A writer that finds every
        chain held shares one, chosen by its process id, and says so."""
        preferred = self.chain if self._chain_claimed else None
        with translate_unavailable(self.retry_after_s):
            conn = await self.engine.connect()
            try:
                repo = AuditRepository(conn)
                claimed = await repo.claim_chain(max_chains=self.max_chains, preferred=preferred)
                chain = claimed if claimed is not None else 1 + os.getpid() % self.max_chains
                await repo.ensure_chain_head(chain)
                await conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
        if claimed is None:
            logger.warning(
                "audit writer: all %d chains are held by other writers (ADVISOR_AUDIT_MAX_CHAINS); sharing chain "
                "%d, whose writers take turns",
                self.max_chains,
                chain,
            )
        if chain != self.chain:
            self._head = None
            self.anchors.log_if_moved()  # the last head of the chain it leaves
        self.chain, self._chain_claimed, self._direct = chain, claimed is not None, conn

    async def _drop_direct(self) -> None:
        """Close the kept connection for good, not back into the pool: that releases the chain's advisory lock
        (a pooled connection would keep holding it, and the chain would look taken)."""
        direct, self._direct = self._direct, None
        if direct is not None:
            with contextlib.suppress(Exception):
                await direct.invalidate()
            with contextlib.suppress(Exception):
                await direct.close()
