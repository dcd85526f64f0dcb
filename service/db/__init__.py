"""The audit store: every decision and the ruleset that made it, append-only.

All SQL of the service lives in this package.
"""

from service.db.engine import create_engine
from service.db.migrate import current_revision, downgrade, head_revision, is_up_to_date, upgrade
from service.db.repository import AuditRepository, DecisionRow, RulesetRow, RulesetSummary
from service.db.tables import decisions, metadata, rulesets

__all__ = [
    "AuditRepository",
    "DecisionRow",
    "RulesetRow",
    "RulesetSummary",
    "create_engine",
    "current_revision",
    "decisions",
    "downgrade",
    "head_revision",
    "is_up_to_date",
    "metadata",
    "rulesets",
    "upgrade",
]
