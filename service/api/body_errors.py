"""Every failing field of a JSON body, each named by its full path, in words a caller can act on.

msgspec reports the first error of a body only; when it rejects one, :func:`field_errors` validates the decoded body
against the published schema of its type (:mod:`service.api.body_schema`) and lists every error, keyed by the path
of the field to change: ``traffic.peak_rps``, ``load_tests[0].instance_type``, ``files["ruleset.yaml"]``; a missing
field by its own path, an unknown one by its path too; the empty key is the body as a whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from jsonschema import ValidationError  # type: ignore[import-untyped,unused-ignore]

from service.api.body_schema import body_validator
from service.api.profile_rules import profile_rule_errors

__all__ = ["MAX_ERRORS", "FieldError", "field_errors", "path_key"]

MAX_ERRORS = 100  # a body of thousands of unknown keys gets a bounded answer
FieldError = dict[str, str]  # {"key", "message", "source"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MSGSPEC_PATH = re.compile(r" - at `(?:key` in `)?\$(.*)`\Z")
_MSGSPEC_FIELD = re.compile(r"Object (?:contains unknown|missing required) field `(.+)`\Z")
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
_SCHEMA_TYPES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


def path_key(path: Iterable[str | int]) -> str:
    """``("traffic", "peak_windows", 0, "cron")`` -> ``traffic.peak_windows[0].cron``."""
    key = ""
    for part in path:
        if isinstance(part, int):
            key += f"[{part}]"
        elif _NAME.match(part):
            key += f".{part}" if key else part
        else:
            key += f"[{json.dumps(part)}]"
    return key


def field_errors(value: Any, type_name: str, rejected: msgspec.ValidationError | None) -> list[FieldError]:
    """The errors of ``value`` (a decoded body) against the schema of ``type_name``; msgspec's ``rejected`` error
    if the schema finds none (a constraint the schema cannot state: a timestamp without a time zone)."""
    errors: list[FieldError] = []
    for error in body_validator(type_name).iter_errors(value):
        for key, message in _explained(error):
            if not any(e["key"] == key for e in errors):
                errors.append({"key": key, "message": message, "source": "body"})
        if len(errors) >= MAX_ERRORS:
            return errors[:MAX_ERRORS]
    if not errors and rejected is not None:
        errors.append(_from_msgspec(str(rejected)))
    if type_name == "WorkloadProfile":  # its cross-field rules too, where their values can be read
        errors += [
            {"key": key, "message": message, "source": "body"}
            for key, message in profile_rule_errors(value)
            if not any(e["key"] == key for e in errors)
        ]
    return errors[:MAX_ERRORS]


def _from_msgspec(text: str) -> FieldError:
    """msgspec's ``Expected `int`, got `str` - at `$.traffic.peak_windows[0].cron``` as an error entry."""
    found = _MSGSPEC_PATH.search(text)
    message = text[: found.start()] if found else text
    parts: list[str | int] = []
    for name, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", found.group(1) if found else ""):
        parts.append(name if name else int(index))
    if field := _MSGSPEC_FIELD.match(message):
        parts.append(field.group(1))
    return {"key": path_key(parts), "message": message, "source": "body"}


def _explained(error: ValidationError) -> list[tuple[str, str]]:
    """(key, message) for one validation error; a failed ``anyOf`` (an optional field's value or ``null``) is
    explained by the branch of the value's own type."""
    path = list(error.absolute_path)
    # Read as Any: jsonschema types them as possibly unset, which they are not on an error it raised.
    keyword: Any = error.validator
    expected: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if keyword in ("anyOf", "oneOf"):
        return _explained_alternatives(error)
    if keyword == "required":
        present = instance if isinstance(instance, dict) else {}
        return [(path_key([*path, name]), "is required") for name in expected if name not in present]
    if keyword == "additionalProperties" and expected is False:
        known = sorted(schema.get("properties", {}))
        hint = f" (known fields: {', '.join(known)})" if known else ""
        unknown = [name for name in instance if name not in known]
        return [(path_key([*path, name]), f"is not a known field{hint}") for name in unknown]
    message = _message(keyword, expected, instance)
    if "propertyNames" in error.relative_schema_path:
        message = f"every key {message}"  # a constraint on the object's keys, not on a field
    return [(path_key(path), message)]


def _explained_alternatives(error: ValidationError) -> list[tuple[str, str]]:
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    branches: Any = error.validator_value
    for index, branch in enumerate(branches):
        if _fits_type(error.instance, branch):  # the value is of this branch's type: what else is wrong with it
            return [pair for sub in by_branch.get(index, []) for pair in _explained(sub)]
    wanted = [_SCHEMA_TYPES.get(str(b.get("type")), "a value of the schema") for b in branches if "type" in b]
    if any("enum" in b for b in branches):
        wanted += [_enum_words(b["enum"]) for b in branches if "enum" in b]
    return [(path_key(error.absolute_path), f"must be {' or '.join(wanted)}, not {_kind(error.instance)}")]


def _fits_type(instance: Any, branch: dict[str, Any]) -> bool:
    kind = branch.get("type")
    if kind is None:
        return "enum" in branch and isinstance(instance, str)
    if kind == "number":
        return isinstance(instance, int | float) and not isinstance(instance, bool)
    if kind == "integer":
        return isinstance(instance, int) and not isinstance(instance, bool)
    return _SCHEMA_TYPES.get(kind) == _kind(instance)


def _kind(instance: Any) -> str:
    return _JSON_TYPES.get(type(instance), "a value")


def _enum_words(values: Sequence[Any]) -> str:
    return "one of " + ", ".join(json.dumps(v) for v in values)


def _message(keyword: str, expected: Any, instance: Any) -> str:
    """Words for one keyword's failure (the keywords msgspec writes into the schemas)."""
    if keyword == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        return f"must be {' or '.join(_SCHEMA_TYPES.get(k, k) for k in kinds)}, not {_kind(instance)}"
    words = {
        "enum": lambda: f"must be {_enum_words(expected)}",
        "const": lambda: f"must be {json.dumps(expected)}",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "exclusiveMinimum": lambda: f"must be greater than {expected}",
        "exclusiveMaximum": lambda: f"must be less than {expected}",
        "minLength": lambda: f"must be at least {expected} characters long",
        "maxLength": lambda: f"must be at most {expected} characters long",
        "pattern": lambda: f"must match the pattern {expected}",
        "minItems": lambda: f"must have at least {expected} items",
        "maxItems": lambda: f"must have at most {expected} items",
        "minProperties": lambda: f"must have at least {expected} entries",
        "maxProperties": lambda: f"must have at most {expected} entries",
    }
    return words[keyword]() if keyword in words else f"does not satisfy {keyword} {json.dumps(expected)}"
