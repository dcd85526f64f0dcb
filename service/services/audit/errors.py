"""What the audit store's doors raise, shared by the writer and the reader.

Errors meaning the database cannot be reached (``service.db.errors``) become ``AuditUnavailable``: the API answers
503 with Retry-After and the pool's pre-ping and invalidation reconnect by themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from service.db.errors import is_database_unavailable

DEFAULT_RETRY_AFTER_S = 2


class AuditWriteFailed(Exception):
    """The transaction holding this decision did not commit; nothing of its batch was stored."""


class AuditUnavailable(AuditWriteFailed):
    """The database cannot be reached (or the writer is shutting down): nothing was stored, retry later."""

    def __init__(self, message: str, *, retry_after_s: int = DEFAULT_RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IdempotencyConflict(Exception):
    """The Idempotency-Key was already used, by this caller, for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key '{key}' was already used with a different request")
        self.key = key


@contextlib.contextmanager
def translate_unavailable(retry_after_s: int = DEFAULT_RETRY_AFTER_S) -> Iterator[None]:
    """Re-raise "database unreachable" errors of the block as ``AuditUnavailable``; others pass unchanged."""
    try:
        yield
    except AuditUnavailable:
        raise
    except Exception as exc:
        if is_database_unavailable(exc):
            raise AuditUnavailable(_describe(exc), retry_after_s=retry_after_s) from exc
        raise


def _describe(exc: BaseException) -> str:
    return f"the audit database is unavailable ({type(exc).__name__})"
