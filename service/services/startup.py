"""Bringing a worker into service, whenever the database answers.

A worker never waits for its database to start: it serves ``/healthz`` at once and brings itself into service as soon
as the database answers, so a database that is down during a rollout leaves unready pods that recover by themselves,
not a crash loop. Bringing it into service means, in order:

1. the schema: with ``ADVISOR_MIGRATE_ON_START`` the migrations are applied (under their lock, see
   ``service.db.migrate``); without, a database lacking one of this release's migrations keeps the worker out of
   service, naming them, until ``advisor db upgrade`` has run;
2. the ruleset: with ``ADVISOR_ACTIVATE_ON_START`` the rules on disk, validated and linted before anything else (a
   ruleset that does not validate never serves: the worker refuses to start), are stored and activated; without,
   the newest activation is adopted, and with none the worker waits for ``advisor rules activate``;
3. from then on, activations made elsewhere are followed (``Activator.poll_forever``).

The first attempt is made before the worker serves, so a worker whose database answers starts in service. Until
it is, ``/readyz`` answers 503 naming what it waits for and decisions answer 503 with Retry-After (no ruleset is
active: ``NoActiveRuleset``), as during any database outage. Attempts are retried every ``RETRY_UNREACHABLE_S``
while the database does not answer (in service within about that long once it does), every ``RETRY_OTHER_S`` while
it answers but something else is missing (``advisor db upgrade``, ``advisor rules activate``, the database itself);
each new cause is logged once, the unforeseen ones with their traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from service.db.errors import is_database_unavailable
from service.db.migrate import missing_revisions, upgrade
from service.rulebook.loader import LoadedRuleset, load_ruleset
from service.services.activation import Activator, RulesetVersionConflict, validate

__all__ = ["MigrationsMissing", "NoActivation", "Startup", "describe_cause"]

# Logger names stay as they were before the services became a package: log queries and alerts match on them.
logger = logging.getLogger("service.startup")

RETRY_UNREACHABLE_S = 0.5
RETRY_OTHER_S = 2.0
MAX_CAUSE_CHARS = 300
NOT_CHECKED = "not checked yet: the database has not answered"


class MigrationsMissing(Exception):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"the database lacks this release's migrations {', '.join(missing)}: run `advisor db upgrade`")
        self.missing = missing


class NoActivation(Exception):
    def __init__(self) -> None:
        super().__init__("no ruleset has been activated yet: run `advisor rules activate`")


def describe_cause(exc: BaseException) -> str:
    """The innermost cause of ``exc`` as ``Type: message`` on one line (e.g. the driver's refused connection)."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if inner is None:
            break
        current = inner
    message = " ".join(str(current).split())
    text = f"{type(current).__name__}: {message}" if message else type(current).__name__
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"


class Startup:
    """One worker's way into service; ``in_service``, ``migrations`` and ``problem`` say where it is."""

    def __init__(
        self,
        activator: Activator,
        *,
        database_url: str,
        migrations_dir: Path | None,
        migrate: bool,
        rules_dir: Path | None,
        activated_by: str,
    ) -> None:
        self.activator = activator
        self.database_url, self.migrations_dir, self.migrate = database_url, migrations_dir, migrate
        self.rules_dir, self.activated_by = rules_dir, activated_by
        self.in_service = False
        self.migrations = NOT_CHECKED
        self.problem = "starting"  # what keeps the worker out of service, for /readyz
        self.attempts = 0
        self._rules: LoadedRuleset | None = None
        self._started = time.monotonic()
        self._last_cause: str | None = None
        self._retry_s = RETRY_UNREACHABLE_S

    def prepare(self) -> None:
        """Load, validate and lint the rules to activate, without the database; raises if they do not validate."""
        if self.rules_dir is not None:
            rules = load_ruleset(self.rules_dir)
            validate(rules)
            self._rules = rules

    async def attempt(self) -> bool:
        """One attempt to come into service; True once in service. Failures are recorded, never raised."""
        if self.in_service:
            return True
        self.attempts += 1
        try:
            await self._migrations()
            await self._ruleset()
        except Exception as exc:
            self._failed(exc)
            return False
        self.in_service, self.problem = True, ""
        active = self.activator.registry.active
        assert active is not None  # activated or adopted just now
        logger.info(
            "in service after %.1f s (%d attempt(s)): ruleset %s (sha256 %s) active",
            time.monotonic() - self._started,
            self.attempts,
            active.version,
            active.sha256,
        )
        return True

    async def run(self) -> None:
        """Retry until in service, then follow activations made elsewhere; runs until cancelled."""
        while not self.in_service:
            await asyncio.sleep(self._retry_s)
            await self.attempt()
        await self.activator.poll_forever()

    async def _migrations(self) -> None:
        # A database a newer release migrated lacks none of this release's: it is left as it is (deploy/README.md).
        if missing := await missing_revisions(self.database_url, migrations_dir=self.migrations_dir):
            if not self.migrate:
                self.migrations = f"missing {', '.join(missing)}: run `advisor db upgrade`"
                raise MigrationsMissing(missing)
            await upgrade(self.database_url, migrations_dir=self.migrations_dir)
        self.migrations = "ok"

    async def _ruleset(self) -> None:
        if self._rules is not None:
            await self.activator.activate(self._rules, by=self.activated_by)
        elif not await self.activator.sync() and self.activator.registry.active is None:
            raise NoActivation()

    def _failed(self, exc: Exception) -> None:
        # What an operator must fix (migrations, an activation, a version bump): one line, no traceback.
        operator = isinstance(exc, MigrationsMissing | NoActivation | RulesetVersionConflict)
        unavailable = not operator and is_database_unavailable(exc)
        if operator:
            cause = str(exc)
            self.problem = "waiting for the migrations" if isinstance(exc, MigrationsMissing) else cause
        elif unavailable:
            cause = f"the database does not answer ({describe_cause(exc)})"
            self.problem = "waiting for the database"
        else:
            self.problem = cause = describe_cause(exc)
        self._retry_s = RETRY_UNREACHABLE_S if unavailable else RETRY_OTHER_S
        if cause == self._last_cause:
            return
        self._last_cause = cause
        logger.warning(
            "not in service yet: %s; /readyz and decisions answer 503 until it is; retrying every %g s",
            cause,
            self._retry_s,
            # Only the unforeseen with its traceback: what the database answered (no such database, a refused login)
            # says all there is in its message.
            exc_info=None if operator or isinstance(exc, SQLAlchemyError) or unavailable else exc,
        )
