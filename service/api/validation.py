"""422s for what the handler reads itself (``profile_body``, ``decision_options``), worded as Litestar words them
for a handler's own arguments, so the answers do not depend on which of the two read the value."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import URL
from litestar.exceptions import ValidationException

__all__ = ["field_error", "validation_failed"]


def field_error(message: str | msgspec.ValidationError, key: str, source: str) -> dict[str, str]:
    """One entry of the problem's ``errors``: msgspec's message without its `` - at `$...``` suffix."""
    return {"message": str(message).split(" - ", maxsplit=1)[0], "key": key, "source": source}


def validation_failed(request: Request[Any, Any, Any], errors: list[dict[str, str]]) -> ValidationException:
    path = URL.from_components(path=request.url.path, query=request.url.query)
    return ValidationException(detail=f"Validation failed for {request.method} {path}", extra=errors)
