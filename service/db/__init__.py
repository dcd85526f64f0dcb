"""The audit store: every decision and the ruleset that made it, append-only and hash-chained.

All SQL of the service lives in this package.
"""

from service.db.chain import ChainHead, chain_hash
from service.db.engine import create_engine
from service.db.migrate import current_revision, downgrade, head_revision, is_up_to_date, upgrade
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
    "current_revision",
    "decisions",
    "downgrade",
    "head_revision",
    "idempotency_keys",
    "is_up_to_date",
    "metadata",
    "rulesets",
    "upgrade",
]
