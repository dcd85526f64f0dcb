"""The rows of the audit store as the code sees them: a decision, its place in the chain, an idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from service.db.chain import ChainHead

__all__ = ["ChainedDecision", "DecisionRow", "IdempotencyRecord", "ListedDecision", "StoredCheckpoint"]


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
    # The advisor release that evaluated it (``service.__version__``); None: recorded before engine versions were
    # kept (migration 0006), or by a release that does not record them.
    engine_version: str | None = None
    # The X-Request-ID the client sent, if well-formed (migration 0007); ``request_id`` is always the service's own.
    client_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListedDecision:
    """A decision as the list shows it: everything but its profile and answer (which are not read)."""

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
    engine_version: str | None = None
    client_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChainedDecision:
    """A decision with its place in the hash chain, as stored."""

    seq: int
    prev_hash: str
    row_hash: str
    decision: DecisionRow
    chain: int = 1

    @property
    def head(self) -> ChainHead:
        """The chain's end once this decision is the last one."""
        return ChainHead(seq=self.seq, row_hash=self.row_hash, chain=self.chain)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A remembered Idempotency-Key: the request it came with and the decision that answered it."""

    caller: str
    key: str
    request_sha256: str
    decision_id: UUID
    decision_created_at: datetime  # the decision's created_at: with decision_id, the decision's primary key
    created_at: datetime
    expires_at: datetime  # the decision's created_at: with decision_id, the decision's primary key


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint as stored: the heads of the chains it binds (``[[chain, seq, row_hash], ...]`` as JSON text),
    chained to the checkpoint before it (``service.services.audit.checkpoints``)."""

    seq: int
    created_at: datetime
    heads: str
    prev_hash: str
    row_hash: str
    key_id: str | None = None  # the signing key's id and the signature (migration 0010); None: unsigned
    signature: str | None = None

    def as_values(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "created_at": self.created_at,
            "heads": self.heads,
            "prev_hash": self.prev_hash,
            "row_hash": self.row_hash,
            "key_id": self.key_id,
            "signature": self.signature,
        }
