"""The workload profile as an HTML form: its fields from the published request schema, and a posted form back to the
JSON value the API would have received (then validated exactly as a JSON body is: :func:`json_body.to_body_type`).

Field names are the JSON paths (``traffic.peak_rps``), so an error keyed by its path lands next to its field. Peak
windows are repeated fields (``traffic.peak_windows.cron`` once per row); a row left empty is no window. Load tests
are left to the JSON API (their environment is a map, which a flat form does not hold well).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.api.body_schema import body_components
from service.api.openapi_docs import WORKED_EXAMPLE

__all__ = ["PEAK_WINDOW_ROWS", "FormField", "FormSection", "form_sections", "form_value", "worked_example_values"]

PEAK_WINDOW_ROWS = 3
_WINDOWS = "traffic.peak_windows"
# (legend, schema component, JSON path prefix, fields left out)
_SECTIONS = (
    ("Workload", "Workload", "workload", ()),
    ("Traffic", "Traffic", "traffic", ("peak_windows",)),
    ("Service-level objectives", "Sla", "sla", ()),
    ("Plan", "WorkloadProfile", "", ("workload", "traffic", "sla", "load_tests")),
)


@dataclass(frozen=True, slots=True)
class FormField:
    name: str  # the JSON path, also the input's name and id
    label: str
    kind: str  # number, integer, select, boolean (a select of false and true), text
    description: str
    required: bool
    options: tuple[str, ...] = ()
    default: str = ""
    row: int | None = None  # the peak-window row of a repeated field

    @property
    def input_id(self) -> str:
        return self.name if self.row is None else f"{self.name}[{self.row}]"

    @property
    def error_key(self) -> str:
        """The key of this field in a 422's ``errors``."""
        if self.row is None:
            return self.name
        return f"{_WINDOWS}[{self.row}].{self.name.rsplit('.', 1)[1]}"


@dataclass(frozen=True, slots=True)
class FormSection:
    legend: str
    fields: list[FormField] = field(default_factory=list)
    rows: list[list[FormField]] = field(default_factory=list)  # repeated groups (peak windows)
    description: str = ""


def _branch(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """The non-null branch of ``anyOf: [X, null]`` (an optional field)."""
    for option in node.get("anyOf", ()):
        if option.get("type") != "null":
            return dict(option)
    return node


def _field(name: str, node: Mapping[str, Any], required: bool, components: Mapping[str, Any]) -> FormField:
    branch = _branch(node)
    if "$ref" in branch:
        branch = components[branch["$ref"].rsplit("/", 1)[1]]
    options = tuple(str(v) for v in branch.get("enum", ()))
    kind = "select" if options else {"number": "number", "integer": "integer"}.get(branch.get("type", ""), "text")
    default = node.get("default")
    if branch.get("type") == "boolean":  # a choice of the two JSON words
        kind, options = "boolean", ("false", "true")
        default = None if default is None else "true" if default else "false"
    words = branch.get("description") or node.get("description") or ""
    return FormField(
        name=name,
        label=name.rsplit(".", 1)[-1].replace("_", " "),
        kind=kind,
        description=str(words),
        required=required,
        options=options,
        default="" if default is None else str(default),
    )


def form_sections() -> list[FormSection]:
    """The form's fieldsets, each field explained by its description in the published schema."""
    components = body_components()
    sections: list[FormSection] = []
    for legend, component, prefix, skip in _SECTIONS:
        schema = components[component]
        required = set(schema.get("required", ()))
        fields = [
            _field(f"{prefix}.{key}" if prefix else key, node, key in required, components)
            for key, node in schema["properties"].items()
            if key not in skip
        ]
        sections.append(FormSection(legend, fields, description=str(schema.get("description", ""))))
        if component == "Traffic":
            sections.append(_windows_section(components))
    return sections


def _windows_section(components: Mapping[str, Any]) -> FormSection:
    schema = components["PeakWindow"]
    required = set(schema.get("required", ()))
    rows = [
        [
            FormField(**{**_as_dict(_field(f"{_WINDOWS}.{key}", node, key in required, components)), "row": row})
            for key, node in schema["properties"].items()
        ]
        for row in range(PEAK_WINDOW_ROWS)
    ]
    return FormSection("Peak windows", rows=rows, description=str(schema.get("description", "")))


def _as_dict(value: FormField) -> dict[str, Any]:
    return {name: getattr(value, name) for name in FormField.__slots__}


def form_value(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The JSON value of a posted form, to be validated as a JSON body is.

    Empty fields are absent (the schema's default applies); the text of a number field is parsed as a JSON number,
    and text that is none stays text, so the validation names it (``must be a number``) with every other error.
    """
    kinds = {f.name: f.kind for s in form_sections() for f in [*s.fields, *(f for r in s.rows for f in r)]}
    value: dict[str, Any] = {}
    windows: dict[str, list[str]] = {}
    for name, text in pairs:
        if name.startswith(f"{_WINDOWS}."):
            windows.setdefault(name.rsplit(".", 1)[1], []).append(text.strip())
        elif name in kinds and text.strip():
            _put(value, name.split("."), _typed(text.strip(), kinds[name]))
    rows = _window_rows(windows, kinds)
    if rows:
        _put(value, _WINDOWS.split("."), rows)
    return value


def _typed(text: str, kind: str) -> Any:
    """A number field's text as a JSON number (an integral one as an integer), a boolean's as true or false; anything
    else as it is."""
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if kind not in ("number", "integer"):
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        return text
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _window_rows(columns: Mapping[str, list[str]], kinds: Mapping[str, str]) -> list[dict[str, Any]]:
    """Peak windows from the repeated fields, row by row; empty rows are skipped, so a row keeps its index only when
    every row before it is filled (the form fills them in order)."""
    count = max((len(v) for v in columns.values()), default=0)
    rows: list[dict[str, Any]] = []
    for i in range(count):
        row = {
            key: _typed(values[i], kinds.get(f"{_WINDOWS}.{key}", "text"))
            for key, values in columns.items()
            if i < len(values) and values[i]
        }
        if row:
            rows.append(row)
    return rows


def _put(target: dict[str, Any], path: list[str], item: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = item


def worked_example_values() -> dict[str, str]:
    """The worked example as form values by field name (``?example=worked`` fills the form with them)."""
    values: dict[str, str] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, item in node.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(item, Mapping):
                walk(name, item)
            else:
                values[name] = str(item)

    walk("", WORKED_EXAMPLE)
    return values
