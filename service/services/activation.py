"""Activating rulesets across every worker and replica.

A ruleset becomes active by an activation row in the shared database (written by a reload, by
``advisor rules activate`` or at start-up). Each worker polls the newest activation and swaps its
compiled ruleset in one reference assignment, so a request is answered wholly by one ruleset and
all workers converge within one poll interval plus a compile. A ruleset that fails validation or
lint never reaches the database, so a broken reload leaves the previous ruleset serving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.activations import ActivationRepository, ActivationRow
from service.db.errors import is_database_unavailable
from service.db.repository import AuditRepository
from service.engine import CompiledRuleset, compile_ruleset
from service.observability.outages import OutageReport
from service.rulebook.lint import LintFinding, lint_ruleset
from service.rulebook.loader import LoadedRuleset, RuleFileError, RulesetInvalid
from service.services.registry import RulesetRegistry

__all__ = ["ActivationResult", "Activator", "RulesetVersionConflict", "validate"]

# Logger names stay as they were before the services became a package: log queries and alerts match on them.
logger = logging.getLogger("service.activation")


@dataclass(frozen=True, slots=True)
class ActivationResult:
    active: CompiledRuleset
    previous_sha256: str | None
    changed: bool
    warnings: list[str]


class RulesetVersionConflict(Exception):
    """The ruleset's version is already stored with other files: one version names one ruleset, so the audit is
    never ambiguous about which rules decided."""

    def __init__(self, version: str, stored: list[str], sha256: str) -> None:
        super().__init__(
            f"ruleset version '{version}' is already stored with sha256 {', '.join(stored)}; these files hash to "
            f"{sha256}: bump `version` in ruleset.yaml"
        )
        self.version, self.stored, self.sha256 = version, stored, sha256


def validate(loaded: LoadedRuleset) -> tuple[CompiledRuleset, list[LintFinding]]:
    """Lint and compile without touching the database: RulesetInvalid on any lint error; the findings otherwise."""
    findings = lint_ruleset(loaded)  # the files as the loader named them
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise RulesetInvalid([RuleFileError(f.file, f.line, f.rule_id, f"{f.code}: {f.message}") for f in errors])
    return compile_ruleset(loaded), findings


class Activator:
    def __init__(self, engine: AsyncEngine, registry: RulesetRegistry, *, poll_interval_s: float = 1.0) -> None:
        self.engine, self.registry, self.poll_interval_s = engine, registry, poll_interval_s
        # Polls fail every interval while the database is away: one traceback, then a summary now and then.
        self.poll_outage = OutageReport(logger, "ruleset poll (the current ruleset keeps serving)", "failed poll(s)")
        self._lock = asyncio.Lock()

    async def activate(self, loaded: LoadedRuleset, *, by: str) -> ActivationResult:
        """Validate, lint, store and activate; RulesetInvalid (nothing changed) on any error, RulesetVersionConflict
        when another ruleset is stored under its version."""
        compiled, findings = validate(loaded)
        async with self._lock, self.engine.begin() as conn:
            activations = ActivationRepository(conn)
            await activations.lock()
            await self._check_version(AuditRepository(conn), loaded)
            latest = await activations.latest()
            previous = latest.sha256 if latest else None
            changed = previous != loaded.sha256
            if changed:
                now = datetime.now(UTC)
                await AuditRepository(conn).save_ruleset(
                    loaded.sha256, loaded.version, loaded.description, loaded.files, now
                )
                await activations.record(
                    sha256=loaded.sha256,
                    version=loaded.version,
                    previous_sha256=previous,
                    activated_at=now,
                    activated_by=by,
                )
            self.registry.set_active(compiled)
        if changed:
            logger.info("ruleset %s (%s) activated by %s", loaded.version, loaded.sha256, by)
        return ActivationResult(compiled, previous, changed, [str(f) for f in findings])

    async def _check_version(self, store: AuditRepository, loaded: LoadedRuleset) -> None:
        """Refuse other files under a stored version; a ruleset already stored may be activated again, and if its
        version was stored twice before this check existed, the registry learns that the version is ambiguous."""
        stored = await store.ruleset_hashes(loaded.version)
        if stored and loaded.sha256 not in stored:
            raise RulesetVersionConflict(loaded.version, stored, loaded.sha256)
        if len(stored) > 1:
            self.registry.mark_ambiguous(loaded.version)

    async def sync(self) -> bool:
        """Adopt the newest activation if this worker runs another ruleset; True if it switched.

        Under the activation lock: a poll that read the newest activation just before this worker activated a
        newer one must not switch back to what it read.
        """
        async with self._lock:
            async with self.engine.connect() as conn:
                latest = await ActivationRepository(conn).latest()
                active = self.registry.active
                if latest is None or (active is not None and active.sha256 == latest.sha256):
                    return False
                if len(await AuditRepository(conn).ruleset_hashes(latest.version)) > 1:
                    self.registry.mark_ambiguous(latest.version)
            compiled = await self.registry.for_sha256(latest.sha256)
            self.registry.set_active(compiled)
        logger.info("switched to ruleset %s (%s)", compiled.version, compiled.sha256)
        return True

    async def history(self, limit: int = 100) -> list[ActivationRow]:
        async with self.engine.connect() as conn:
            return await ActivationRepository(conn).history(limit)

    async def poll_forever(self) -> None:
        """Follow activations made elsewhere; a failing poll keeps the current ruleset serving."""
        try:
            while True:
                await asyncio.sleep(self.poll_interval_s)
                try:
                    await self.sync()
                except Exception as exc:
                    if is_database_unavailable(exc):
                        self.poll_outage.failed(exc)
                    else:  # not the database being away: every time, with its traceback
                        logger.warning("ruleset poll failed; still serving the current ruleset", exc_info=True)
                else:
                    self.poll_outage.succeeded()
        finally:
            self.poll_outage.close()
