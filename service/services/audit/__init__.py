"""The audit store's doors: the writer (``writer``: the one commit boundary for decisions, group commit, hash chain,
idempotency keys), the reader (``reader``), the chain verifier (``chain``) and the chain heads logged for it
(``anchors``); ``errors`` holds what they raise.

The names are re-exported here, so callers import ``from service.services.audit import AuditWriter``; so are the
row types the reader returns, so the API names them without importing the database layer.
"""

from service.db.errors import is_database_unavailable
from service.db.repository import DecisionRow, RulesetRow, RulesetSummary
from service.services.audit.anchors import ChainAnchors, read_anchors
from service.services.audit.batch import IdempotencyKey, WriterStats
from service.services.audit.chain import ChainBreak, ChainReport, verify_chain
from service.services.audit.errors import (
    DEFAULT_RETRY_AFTER_S,
    AuditUnavailable,
    AuditWriteFailed,
    IdempotencyConflict,
    translate_unavailable,
)
from service.services.audit.reader import AuditReader
from service.services.audit.writer import AuditWriter

__all__ = [
    "DEFAULT_RETRY_AFTER_S",
    "AuditReader",
    "AuditUnavailable",
    "AuditWriteFailed",
    "AuditWriter",
    "ChainAnchors",
    "ChainBreak",
    "ChainReport",
    "DecisionRow",
    "IdempotencyConflict",
    "IdempotencyKey",
    "RulesetRow",
    "RulesetSummary",
    "WriterStats",
    "is_database_unavailable",
    "read_anchors",
    "translate_unavailable",
    "verify_chain",
]
