"""The JSON Schema of the request bodies, as msgspec enforces them: published in the OpenAPI document and used to
list every failing field of a rejected body.

msgspec generates the schema of each body Struct from the same declarations it checks (``forbid_unknown_fields``
becomes ``additionalProperties: false``; every ``Meta`` bound becomes its keyword), so the published document states
what the server enforces. Litestar's own schemas of these Structs leave some of that out, so
:class:`BodySchemaPlugin` gives Litestar these instead, and :func:`body_validator` checks a body against the very
same schemas (with the ``jsonschema`` package) when msgspec has rejected it: msgspec stops at the first error, the
validator finds them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from service.api.openapi_docs import WORKED_EXAMPLE
from service.api.schemas import ImpactRequest
from service.contract import WorkloadProfile

if TYPE_CHECKING:  # the type of the argument Litestar passes to a schema plugin, as its own plugins name it
    from litestar._openapi.schema_generation import SchemaCreator

__all__ = [
    "BODY_TYPES",
    "BodySchemaPlugin",
    "ImpactOperation",
    "RecommendationOperation",
    "body_components",
    "body_validator",
    "spec_schema",
]

COMPONENTS = "#/components/schemas/"
BODY_TYPES: tuple[type[msgspec.Struct], ...] = (WorkloadProfile, ImpactRequest)


@cache
def body_components() -> dict[str, dict[str, Any]]:
    """Every body Struct's schema (and those of the Structs inside it) by name, referring to each other as
    ``#/components/schemas/<name>``."""
    _, components = msgspec.json.schema_components(BODY_TYPES, ref_template=COMPONENTS + "{name}")
    return {name: _readable(schema) for name, schema in components.items()}


def _readable(node: Any) -> Any:
    """The same schema, easier to read: an optional field's description on the field rather than inside the
    ``anyOf`` of it and ``null``, and ``type: string`` beside an enum of strings."""
    if isinstance(node, list):
        return [_readable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _readable(value) for key, value in node.items()}
    branches = node.get("anyOf")
    if branches and "description" not in node:
        described = [branch for branch in branches if "description" in branch]
        if len(described) == 1:
            node["description"] = described[0].pop("description")
    enum = node.get("enum")
    if enum and "type" not in node and all(isinstance(value, str) for value in enum):
        node["type"] = "string"
    return node


@cache
def body_validator(type_name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator of the body Struct ``type_name`` against :func:`body_components`."""
    root = {"$ref": COMPONENTS + type_name, "components": {"schemas": body_components()}}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


# --- the same schemas as Litestar's OpenAPI objects --------------------------------------------------------------

# JSON Schema keyword -> Schema attribute: the attribute's alias, or its name (one word) but for exclusive_maximum.
_KEYS = {field.metadata.get("alias", field.name): field.name for field in dataclasses.fields(Schema)}
_KEYS["exclusiveMaximum"] = "exclusive_maximum"
_ONE_SCHEMA = {"items", "not", "if", "then", "else", "contains", "propertyNames", "additionalProperties"}
_SCHEMA_LIST = {"allOf", "anyOf", "oneOf", "prefixItems"}
_SCHEMA_MAP = {"properties", "patternProperties", "dependentSchemas"}


def spec_schema(node: Mapping[str, Any]) -> Schema | Reference:
    """A JSON Schema (as msgspec writes it) as Litestar's ``Schema`` (or ``Reference``) object."""
    if "$ref" in node:
        return Reference(ref=node["$ref"])
    values: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ONE_SCHEMA and isinstance(value, Mapping):
            value = spec_schema(value)
        elif key in _SCHEMA_LIST:
            value = [spec_schema(item) for item in value]
        elif key in _SCHEMA_MAP:
            value = {name: spec_schema(item) for name, item in value.items()}
        elif key == "type":
            value = OpenAPIType(value)
        elif key == "format":
            value = OpenAPIFormat(value)
        values[_KEYS[key]] = value
    return Schema(**values)


class BodySchemaPlugin(OpenAPISchemaPlugin):
    """Documents the body Structs (and the Structs inside them) with :func:`body_components`, wherever the OpenAPI
    document mentions them (a stored profile in a decision record is the same ``WorkloadProfile``)."""

    def __init__(self) -> None:
        self._types = {t.__name__: t for t in _structs_within(BODY_TYPES)}

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        annotation = field_definition.annotation
        return isinstance(annotation, type) and self._types.get(annotation.__name__) is annotation

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        name = field_definition.annotation.__name__
        # Registers the component (under its name) before anything inside it refers to it.
        schema = schema_creator.create_component_schema(field_definition, required=[], property_fields={}, title=name)
        source = spec_schema(body_components()[name])
        assert isinstance(source, Schema)
        for field in dataclasses.fields(Schema):
            if (value := getattr(source, field.name)) is not None:
                setattr(schema, field.name, value)
        for ref in _refs(body_components()[name]):  # the Structs it refers to are components too
            schema_creator.for_field_definition(FieldDefinition.from_annotation(self._types[ref]))
        return schema


def _structs_within(types: tuple[type[msgspec.Struct], ...]) -> list[type[msgspec.Struct]]:
    found: dict[str, type[msgspec.Struct]] = {}

    def visit(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls.__name__ in found:
                return
            found[info.cls.__name__] = info.cls
            for field in info.fields:
                visit(field.type)
        for inner in ("type", "item_type", "key_type", "value_type"):  # Metadata, lists, dicts
            if (nested := getattr(info, inner, None)) is not None:
                visit(nested)
        for member in getattr(info, "types", ()):
            visit(member)

    for t in types:
        visit(msgspec.inspect.type_info(t))
    return list(found.values())


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    if not isinstance(node, dict):
        return set()
    own = {node["$ref"].removeprefix(COMPONENTS)} if "$ref" in node else set()
    return own.union(*(_refs(value) for value in node.values()))


# --- the bodies of the operations that read them (``read_json``), documented as Litestar documents ``data`` -------


def _json_body(schema: Schema | Reference) -> RequestBody:
    return RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)


@dataclass
class RecommendationOperation(Operation):
    """POST /v1/recommendations as Litestar builds it, with its body: the ``WorkloadProfile`` component."""

    def __post_init__(self) -> None:
        profile = Reference(ref=COMPONENTS + "WorkloadProfile")
        self.request_body = _json_body(Schema(all_of=[profile], examples=[WORKED_EXAMPLE], title="WorkloadProfile"))


@dataclass
class ImpactOperation(Operation):
    """POST /v1/rulesets/impact as Litestar builds it, with its body: the ``ImpactRequest`` schema, in place (no
    response holds one, so it is not a component)."""

    def __post_init__(self) -> None:
        self.request_body = _json_body(spec_schema(body_components()["ImpactRequest"]))
