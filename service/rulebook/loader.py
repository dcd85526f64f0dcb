"""Load a ruleset directory: safe YAML, typed validation, errors with file and line.

A ruleset is ``ruleset.yaml`` + ``catalog.yaml`` + ``tables/*.yaml`` (one decision table per
file), and ``models.yaml`` (the LLM architectures) where the directory has one. Its identity is
the manifest's ``version`` plus a sha256 over the canonical serialisation of those files, so the
same files give the same hash on any machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from service.rulebook.fields import TABLE_ORDER, TableName
from service.rulebook.llm_models import ModelCatalog
from service.rulebook.models import AnyTable, Catalog, RulesetManifest
from service.rulebook.safe_yaml import LinePath, NodeBudget, YamlError, parse_yaml

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedRuleset",
    "RuleFileError",
    "RulesetInvalid",
    "load_ruleset",
    "parse_ruleset",
]

MAX_FILE_BYTES = 1_000_000
REQUIRED_TABLES: tuple[TableName, ...] = ("family", "sizing", "scaling", "availability")
_TABLE_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyTable)


@dataclass(frozen=True, slots=True)
class RuleFileError:
    """One problem, located: ``rules/scaling.yaml:14 rule 'bursty-step': unknown field 'treshold'``."""

    file: str
    line: int | None
    rule_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        rule = f" rule '{self.rule_id}'" if self.rule_id else ""
        return f"{where}{rule}: {self.message}"


class RulesetInvalid(Exception):
    """The ruleset failed validation; it must not be activated."""

    def __init__(self, errors: list[RuleFileError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True, slots=True)
class LoadedRuleset:
    """A validated ruleset with its identity and the exact text of its files."""

    version: str
    description: str
    sha256: str
    catalog: Catalog
    tables: Mapping[TableName, Any]  # table name -> validated *Table model
    files: Mapping[str, str]  # relative posix path -> text
    lines: Mapping[tuple[str, str], int]  # (relative path, rule id) -> line of the rule
    # Where the files were read from, as error locations show it (``rules``, ``staging/rules``, ``stored:1.0``):
    # lint findings name the same files as the loader's errors.
    label: str = "rules"
    table_files: Mapping[TableName, str] = field(default_factory=dict)  # table -> relative path of its file
    models: ModelCatalog = field(default_factory=ModelCatalog)  # rules/models.yaml; empty in rulesets without it


def ruleset_files(directory: Path, *, label: str | None = None) -> dict[str, str]:
    """The files that make up a ruleset, by relative posix path, newlines normalised.

    Errors name the files as ``label/relative/path`` (default: the directory as given).
    """
    shown = label if label is not None else directory.as_posix()
    if not directory.is_dir():
        raise RulesetInvalid([RuleFileError(shown, None, None, f"no such rules directory ({directory.absolute()})")])
    paths = [
        directory / "ruleset.yaml",
        directory / "catalog.yaml",
        *sorted((directory / "tables").glob("*.yaml")),
    ]
    if (directory / "models.yaml").is_file():  # optional: rulesets stored before it existed have none
        paths.insert(2, directory / "models.yaml")
    files: dict[str, str] = {}
    for path in paths:
        rel = path.relative_to(directory).as_posix()
        if not path.is_file():
            raise RulesetInvalid([RuleFileError(f"{shown}/{rel}", None, None, "file is missing")])
        if path.stat().st_size > MAX_FILE_BYTES:
            error = RuleFileError(f"{shown}/{rel}", None, None, f"file is larger than {MAX_FILE_BYTES} bytes")
            raise RulesetInvalid([error])
        files[rel] = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    return files


def ruleset_sha256(files: Mapping[str, str]) -> str:
    """sha256 of the canonical serialisation: JSON of [[path, text], ...] sorted by path, UTF-8."""
    canonical = json.dumps(sorted(files.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_ruleset(directory: str | Path, *, label: str | None = None) -> LoadedRuleset:
    """Read and validate the ruleset in ``directory``; raise RulesetInvalid listing every error.

    ``label`` is the prefix shown in error locations (default: the directory as given).
    """
    directory = Path(directory)
    shown = label if label is not None else directory.as_posix()
    return parse_ruleset(ruleset_files(directory, label=shown), label=shown)


def parse_ruleset(files: Mapping[str, str], *, label: str = "rules") -> LoadedRuleset:
    """Validate a ruleset given as file texts (e.g. read back from the audit store)."""
    parsed = _Parsed(label)
    for rel, text in files.items():
        parsed.add(rel, text)
    errors = parsed.errors
    if not errors:
        missing = [t for t in REQUIRED_TABLES if t not in parsed.tables]
        if missing:
            errors.append(RuleFileError(f"{label}/tables", None, None, f"missing table(s): {', '.join(missing)}"))
    if errors or parsed.manifest is None or parsed.catalog is None:
        raise RulesetInvalid(errors)
    return LoadedRuleset(
        version=parsed.manifest.version,
        description=parsed.manifest.description,
        sha256=ruleset_sha256(files),
        catalog=parsed.catalog,
        tables={name: parsed.tables[name] for name in TABLE_ORDER if name in parsed.tables},
        files=dict(files),
        lines=parsed.rule_lines,
        label=label,
        table_files=parsed.table_files,
        models=parsed.models,
    )


class _Parsed:
    """The files of one ruleset as they are validated, and every error found so far."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.errors: list[RuleFileError] = []
        self.manifest: RulesetManifest | None = None
        self.catalog: Catalog | None = None
        self.models = ModelCatalog()
        self.tables: dict[TableName, Any] = {}
        self.table_files: dict[TableName, str] = {}
        self.rule_lines: dict[tuple[str, str], int] = {}
        self._first_id: dict[str, str] = {}  # rule id -> where it is first used (file:line)
        self._budget = NodeBudget()  # one for all the files: their number does not multiply it

    def add(self, rel: str, text: str) -> None:
        shown = f"{self.label}/{rel}"
        try:
            data, lines = parse_yaml(text, self._budget)
        except YamlError as exc:
            self.errors.append(RuleFileError(shown, exc.line, None, exc.message))
            return
        if rel == "ruleset.yaml":
            self.manifest = _validate(RulesetManifest, data, lines, shown, self.errors)
        elif rel == "catalog.yaml":
            self.catalog = _validate(Catalog, data, lines, shown, self.errors)
        elif rel == "models.yaml":
            self.models = _validate(ModelCatalog, data, lines, shown, self.errors) or self.models
        else:
            self._check_ids(data, lines, shown)
            self._add_table(rel, _validate(_TABLE_ADAPTER, data, lines, shown, self.errors), lines, shown)

    def _add_table(self, rel: str, table: Any, lines: dict[LinePath, int], shown: str) -> None:
        if table is None:
            return
        for index, rule in enumerate(table.rules):
            self.rule_lines.setdefault((rel, rule.id), lines.get(("rules", index), 1))
        if table.table in self.tables:
            other = f"{self.label}/{self.table_files[table.table]}"
            self.errors.append(RuleFileError(shown, 1, None, f"table '{table.table}' is also defined in {other}"))
            return
        self.tables[table.table] = table
        self.table_files[table.table] = rel

    def _check_ids(self, data: Any, lines: dict[LinePath, int], shown: str) -> None:
        """Rule ids are unique in the whole ruleset (rules/README.md: an id is never reused): a second use is
        reported where it is, naming the first."""
        rules = data.get("rules") if isinstance(data, dict) else None
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            rule_id = rule.get("id") if isinstance(rule, dict) else None
            if not isinstance(rule_id, str):
                continue
            line = lines.get(("rules", index, "id"), lines.get(("rules", index)))
            here = f"{shown}:{line}"
            first = self._first_id.setdefault(rule_id, here)
            if first != here:
                self.errors.append(RuleFileError(shown, line, rule_id, f"duplicate id: first used at {first}"))


# ---------------------------------------------------------------- YAML with line numbers


def yaml_with_lines(text: str, shown: str) -> tuple[Any, dict[LinePath, int]]:
    """Safe-load YAML, returning the data and the line of each key path; RulesetInvalid on bad YAML."""
    try:
        return parse_yaml(text, NodeBudget())
    except YamlError as exc:
        raise RulesetInvalid([RuleFileError(shown, exc.line, None, exc.message)]) from None


# ---------------------------------------------------------------- validation errors with lines

_RULE_FIELD = re.compile(r"rule '([^']+)'(?:: field '([^']+)')?")


def _validate(model: Any, data: Any, lines: dict[LinePath, int], shown: str, errors: list[RuleFileError]) -> Any:
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            errors.append(_locate(err, data, lines, shown))
        return None


def _locate(err: Any, data: Any, lines: dict[LinePath, int], shown: str) -> RuleFileError:
    loc: list[str | int] = list(err["loc"])
    if loc and isinstance(loc[0], str) and loc[0] in TABLE_ORDER:
        loc = loc[1:]  # pydantic puts the discriminator value of the tagged union first
    message: str = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = f"unknown field '{loc[-1]}'"
    elif err["type"] == "missing":
        message = f"missing field '{loc[-1]}'"
    rule_id: str | None = None
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = _rule_id_at(data, loc[1])
    match = _RULE_FIELD.match(message)
    if match and isinstance(data, dict):  # a table-level check that names the rule (and field) itself
        rule_id = match.group(1)
        message = message[match.end() :].lstrip(": ") or message
        index = next((i for i, r in enumerate(data.get("rules") or []) if _rule_id_at(data, i) == rule_id), None)
        if index is not None:
            loc = ["rules", index, "when", match.group(2)] if match.group(2) else ["rules", index]
            if match.group(2):
                message = f"field '{match.group(2)}': {message}"
    return RuleFileError(shown, _line_of(loc, lines), rule_id, message)


def _rule_id_at(data: Any, index: int) -> str | None:
    try:
        rule_id = data["rules"][index]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return rule_id if isinstance(rule_id, str) else None


def _line_of(loc: list[str | int], lines: dict[LinePath, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        key = tuple(loc[:end])
        if key in lines:
            return lines[key]
    return None
