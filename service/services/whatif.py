"""What-if counterfactuals of an audited decision: its stored profile, under the ruleset that decided it.

Computed on demand by this release's engine (``service.engine.whatif``); nothing is audited, and the decision's own
figures in the report are this engine's too, so that every delta compares like with like.
"""

from __future__ import annotations

import uuid

import msgspec

from service.contract import WhatIfReport
from service.engine import ProfileRejected
from service.engine.whatif import what_if_report
from service.services.audit import AuditReader
from service.services.registry import RulesetNotFound, RulesetRegistry
from service.services.replay import DecisionNotFound, StoredDecisionUnusable, stored_profile

__all__ = ["DecisionNotFound", "StoredDecisionUnusable", "WhatIfRunner"]


class WhatIfRunner:
    def __init__(self, reader: AuditReader, registry: RulesetRegistry) -> None:
        self.reader, self.registry = reader, registry

    async def report(self, decision_id: uuid.UUID) -> WhatIfReport:
        """The counterfactuals of one audited decision.

        Raises:
            DecisionNotFound: no decision has this id.
            StoredDecisionUnusable: its profile no longer decodes, its ruleset is not stored, or this engine
                refuses the profile.
        """
        row = await self.reader.decision(decision_id)
        if row is None:
            raise DecisionNotFound(decision_id)
        profile = stored_profile(decision_id, row.profile)
        try:
            ruleset = await self.registry.for_sha256(row.ruleset_sha256)
        except RulesetNotFound as exc:
            raise StoredDecisionUnusable(
                "ruleset-not-stored",
                f"ruleset {row.ruleset_version} (sha256 {row.ruleset_sha256}) that made decision {decision_id} "
                "is not stored.",
            ) from exc
        try:
            report = what_if_report(profile, ruleset)
        except ProfileRejected as exc:
            raise StoredDecisionUnusable(
                "stored-profile-refused",
                f"this release's engine refuses the stored profile under ruleset {ruleset.version} "
                f"({exc.code}): {exc.message}",
            ) from exc
        return msgspec.structs.replace(report, decision_id=str(decision_id))
