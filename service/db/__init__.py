"""The audit store: every decision and the ruleset that made it, append-only and hash-chained.

All SQL of the service lives in this package. Migrations are in ``service.db.migrate``, imported from there: alembic
costs ~0.1 s of start-up that the commands reading the store (``rules impact``, ``audit verify``) do not need.
"""

from service.db.chain import ChainHead, chain_hash
from service.db.connection import create_engine
from service.db.repository import (
    AuditRepository,
    ChainedDecision,
    DecisionRow,
    IdempotencyRecord,
    RulesetRow,
    RulesetSummary,
)
from service.db.tables import audit_chain_head, decisions, idempotency_keys, metadata, rulesets

__all__ = [
    "AuditRepository",
    "ChainHead",
    "ChainedDecision",
    "DecisionRow",
    "IdempotencyRecord",
    "RulesetRow",
    "RulesetSummary",
    "audit_chain_head",
    "chain_hash",
    "create_engine",
    "decisions",
    "idempotency_keys",
    "metadata",
    "rulesets",
]
