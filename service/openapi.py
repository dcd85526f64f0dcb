"""Print the OpenAPI document generated from the code: ``python -m service.openapi > openapi/openapi.json``."""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec

__all__ = ["render_openapi"]


def render_openapi() -> str:
    """The spec as committed: sorted keys, two-space indent, trailing newline."""
    from service.app import create_app
    from service.settings import Settings

    # Building the app opens nothing: the database and rules are touched only at start-up.
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    schema: dict[str, Any] = msgspec.to_builtins(app.openapi_schema.to_schema())
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_openapi())
