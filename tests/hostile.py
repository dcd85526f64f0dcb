"""Hostile request bodies, shared by the tests of each endpoint that reads a JSON body and by the suite of hostile
requests against a running server."""

from __future__ import annotations

import json
from pathlib import Path

from profiles import WORKED_EXAMPLE

from service.api.json_body import MAX_DEPTH
from service.rulebook.loader import load_ruleset

__all__ = ["HOSTILE", "IMPACT", "PROFILE", "RULE_FILES"]

PROFILE = json.dumps(WORKED_EXAMPLE).encode()
RULE_FILES = dict(load_ruleset(Path(__file__).resolve().parents[1] / "rules").files)
IMPACT = json.dumps({"files": RULE_FILES, "limit": 10}).encode()
MB2 = 2 * 1024 * 1024


def _with(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body
    return body.replace(old, new, 1)


# name -> (body of POST /v1/recommendations, body of POST /v1/rulesets/impact, status, problem code)
HOSTILE: dict[str, tuple[bytes, bytes, int, str]] = {
    "deep-array": (b"[" * 5000 + b"]" * 5000, b"[" * 5000 + b"]" * 5000, 400, "body-nested-too-deeply"),
    "deep-object": (
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"files":' * 5000 + b"{}" + b"}" * 5000,
        400,
        "body-nested-too-deeply",
    ),
    "just-too-deep": (
        _with(PROFILE, b'"model_memory_gib": 2', b'"model_memory_gib": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH),
        _with(IMPACT, b'"limit": 10', b'"limit": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH),
        400,
        "body-nested-too-deeply",
    ),
    "string-number": (
        _with(PROFILE, b'"peak_rps": 150', b'"peak_rps": "150"'),
        _with(IMPACT, b'"limit": 10', b'"limit": "10"'),
        422,
        "invalid-request",
    ),
    "1e400": (
        _with(PROFILE, b'"peak_rps": 150', b'"peak_rps": 1e400'),
        _with(IMPACT, b'"limit": 10', b'"limit": 1e400'),
        400,
        "malformed-json",
    ),
    "invalid-utf-8": (
        _with(PROFILE, b'"fraud-xgb"', b'"fraud-\xff\xfe"'),
        _with(IMPACT, b'"ruleset.yaml"', b'"ruleset\xc3.yaml"'),
        400,
        "malformed-json",
    ),
    "bom": (b"\xef\xbb\xbf" + PROFILE, b"\xef\xbb\xbf" + IMPACT, 400, "malformed-json"),
    "duplicate-key": (
        _with(PROFILE, b'"peak_rps": 150', b'"peak_rps": 1, "peak_rps": 150'),
        _with(IMPACT, b'"limit": 10', b'"limit": 1000000, "limit": 10'),
        400,
        "duplicate-key",
    ),
    "2-mb": (
        b'{"name": "' + b"x" * MB2 + b'"}',
        b'{"files": {"ruleset.yaml": "' + b"x" * MB2 + b'"}}',
        413,
        "body-too-large",
    ),
    "empty": (b"", b"", 400, "empty-body"),
    "truncated": (PROFILE[:-1], IMPACT[:-1], 400, "malformed-json"),
}
