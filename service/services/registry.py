"""Which ruleset answers: the active one, or a stored earlier one pinned by version.

The active ruleset is one immutable object behind one reference, so a request that read it is
answered wholly by it even if another ruleset becomes active meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.repository import AmbiguousRulesetVersion, AuditRepository, RulesetRow
from service.engine import CompiledRuleset, compile_ruleset
from service.rulebook.loader import parse_ruleset
from service.services.audit import DEFAULT_RETRY_AFTER_S, AuditUnavailable

__all__ = ["AmbiguousRulesetVersion", "NoActiveRuleset", "RulesetNotFound", "RulesetRegistry"]

MAX_CACHED = 16


class RulesetNotFound(Exception):
    def __init__(self, version: str) -> None:
        super().__init__(f"no stored ruleset has version '{version}'")
        self.version = version


class NoActiveRuleset(AuditUnavailable):
    """No ruleset is active yet: the worker waits for the database to store and activate one (``startup``).

    An outage like any other for the caller (503 with Retry-After): no decision can be made or audited yet.
    """

    def __init__(self, *, retry_after_s: int) -> None:
        super().__init__(
            "no ruleset is active yet: this worker is waiting for the database to store and activate one",
            retry_after_s=retry_after_s,
        )


@dataclass
class RulesetRegistry:
    engine: AsyncEngine
    active: CompiledRuleset | None = None
    retry_after_s: int = DEFAULT_RETRY_AFTER_S  # of the 503 answered while no ruleset is active
    _by_sha: dict[str, CompiledRuleset] = field(default_factory=dict)
    # Versions several stored rulesets carry (stored before activation refused that): a version names none of them.
    _ambiguous: set[str] = field(default_factory=set)

    def set_active(self, compiled: CompiledRuleset) -> None:
        """Make ``compiled`` the active ruleset: one reference assignment, so a request that already
        took the previous one finishes with it."""
        self._remember(compiled)
        self.active = compiled

    def mark_ambiguous(self, version: str) -> None:
        """Several stored rulesets carry ``version``: asking for it raises AmbiguousRulesetVersion, even when the
        active ruleset is one of them (the activator tells, as it reads the store)."""
        self._ambiguous.add(version)

    def active_for(self, version: str | None) -> CompiledRuleset | None:
        """The active ruleset if it answers for ``version`` (None: whichever is active), without any I/O."""
        active = self.active
        if active is not None and (version is None or (version == active.version and version not in self._ambiguous)):
            return active
        return None

    async def for_version(self, version: str | None) -> CompiledRuleset:
        """The active ruleset, or the one stored ruleset labelled ``version``; NoActiveRuleset before one is active.

        RulesetNotFound when no stored ruleset carries ``version``, AmbiguousRulesetVersion (naming their hashes) when
        several do.
        """
        active = self.active
        if active is None:
            raise NoActiveRuleset(retry_after_s=self.retry_after_s)
        if version is None or (version == active.version and version not in self._ambiguous):
            return active
        async with self.engine.connect() as conn:
            try:
                row = await AuditRepository(conn).get_ruleset_by_version(version)
            except AmbiguousRulesetVersion:
                self.mark_ambiguous(version)
                raise
        if row is None:
            raise RulesetNotFound(version)
        return self._compiled(row)

    async def for_sha256(self, sha256: str) -> CompiledRuleset:
        """The stored ruleset with exactly this content hash (every audited decision names one)."""
        active = self.active
        if active is not None and active.sha256 == sha256:
            return active
        cached = self._by_sha.get(sha256)
        if cached is not None:
            return cached
        async with self.engine.connect() as conn:
            row = await AuditRepository(conn).get_ruleset(sha256)
        if row is None:
            raise RulesetNotFound(sha256)
        return self._compiled(row)

    def _compiled(self, row: RulesetRow) -> CompiledRuleset:
        cached = self._by_sha.get(row.sha256)
        if cached is not None:
            return cached
        compiled = compile_ruleset(parse_ruleset(row.files, label=f"stored:{row.version}"))
        if compiled.sha256 != row.sha256:
            raise RuntimeError(f"stored ruleset {row.sha256} hashes to {compiled.sha256}: the store was altered")
        self._remember(compiled)
        return compiled

    def _remember(self, compiled: CompiledRuleset) -> None:
        if len(self._by_sha) >= MAX_CACHED:
            self._by_sha.pop(next(iter(self._by_sha)))
        self._by_sha[compiled.sha256] = compiled
