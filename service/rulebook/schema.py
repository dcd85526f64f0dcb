"""JSON Schemas of the rule-file formats, generated from the models (committed under rules/schema/).

Editors that speak the yaml-language-server protocol validate and autocomplete rule files from
the ``# yaml-language-server: $schema=...`` line at the top of each file.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from service.rulebook.fields import FIELDS
from service.rulebook.llm_models import ModelCatalog
from service.rulebook.models import AnyTable, Catalog, RulesetManifest
from service.rulebook.testcases import RuleTestFile

__all__ = ["SCHEMA_FILES", "render_schemas"]

SCHEMA_FILES = (
    "table.schema.json",
    "catalog.schema.json",
    "ruleset.schema.json",
    "tests.schema.json",
    "models.schema.json",
)


def _table_schema() -> dict[str, Any]:
    schema = TypeAdapter(AnyTable).json_schema(by_alias=True)
    schema["title"] = "advisor decision table (rules/tables/*.yaml)"
    # Condition keys are field names from a fixed registry: list them so editors autocomplete.
    names = sorted(FIELDS)
    for definition in schema.get("$defs", {}).values():
        when = definition.get("properties", {}).get("when")
        if when is not None:
            when["propertyNames"] = {"enum": names}
    return schema


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, deterministic (sorted keys, trailing newline)."""
    schemas: dict[str, dict[str, Any]] = {
        "table.schema.json": _table_schema(),
        "catalog.schema.json": Catalog.model_json_schema(by_alias=True),
        "ruleset.schema.json": RulesetManifest.model_json_schema(by_alias=True),
        "tests.schema.json": RuleTestFile.model_json_schema(by_alias=True),
        "models.schema.json": ModelCatalog.model_json_schema(by_alias=True),
    }
    for name, schema in schemas.items():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema.setdefault("$id", f"https://advisor.local/schema/{name}")
    return {name: json.dumps(schema, indent=2, sort_keys=True) + "\n" for name, schema in schemas.items()}
