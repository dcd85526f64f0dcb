"""Rule-file YAML, loaded safely and with the line of every key: bounded in nodes and in depth.

Candidate rule files arrive over HTTP (``POST /v1/rulesets/impact``), so a file must not be able to make the loader
build millions of nodes (aliases, "billion laughs") or recurse until Python's stack runs out (deep nesting):

* :data:`MAX_YAML_NODES` nodes per :class:`NodeBudget`: one budget covers every file of a ruleset, whatever the
  number of files;
* :data:`MAX_YAML_DEPTH` levels of nesting, when composed and after aliases are expanded;
* a tag allow-list (plain scalars, mappings and sequences: no Python objects, no ``!!binary`` or ``!!set``) and no
  merge keys (``<<``).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MAX_YAML_DEPTH", "MAX_YAML_NODES", "LinePath", "NodeBudget", "YamlError", "parse_yaml"]

MAX_YAML_NODES = 200_000  # per ruleset: far above the shipped rules; stops alias ("billion laughs") bombs
MAX_YAML_DEPTH = 64  # the shipped rules nest 7 levels; PyYAML's composer recurses once per level

LinePath = tuple[str | int, ...]


class YamlError(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


class NodeBudget:
    """The YAML nodes a ruleset may still build, shared by all its files."""

    def __init__(self, nodes: int = MAX_YAML_NODES) -> None:
        self.limit = self.left = nodes

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise YamlError(
                node.start_mark.line + 1,
                f"the ruleset holds more than {self.limit} YAML nodes in all its files (an alias bomb?)",
            )


class _DepthLimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than :data:`MAX_YAML_DEPTH` before its composer recurses."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlError(self.peek_event().start_mark.line + 1, _too_deep())  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose(text: str) -> yaml.Node | None:
    loader = _DepthLimitedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _too_deep() -> str:
    return f"YAML nested more than {MAX_YAML_DEPTH} levels deep"


def parse_yaml(text: str, budget: NodeBudget) -> tuple[Any, dict[LinePath, int]]:
    """Safe-load YAML and record the 1-based line of every mapping key and sequence item.

    Raises:
        YamlError: invalid YAML, a refused tag or merge key, over the node budget or too deep.
    """
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise YamlError(line, f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:  # also a character YAML does not allow, found before parsing starts
        raise YamlError(None, f"invalid YAML: {exc}") from None
    if node is None:
        raise YamlError(1, "file is empty")
    lines: dict[LinePath, int] = {}
    # A constructor per call: PyYAML's keeps every node it built (``constructed_objects``) for the loader's life.
    return _construct(node, (), lines, budget, yaml.SafeLoader("")), lines


_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


def _construct(
    node: yaml.Node, path: LinePath, lines: dict[LinePath, int], budget: NodeBudget, scalars: yaml.SafeLoader
) -> Any:
    budget.spend(node)
    if len(path) > MAX_YAML_DEPTH:  # aliases can nest what was composed shallow
        raise YamlError(node.start_mark.line + 1, _too_deep() + " once its aliases are expanded")
    lines.setdefault(path, node.start_mark.line + 1)
    if node.tag not in _ALLOWED_TAGS:
        raise YamlError(node.start_mark.line + 1, f"invalid YAML: tag {node.tag} is not allowed in rule files")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError(key_node.start_mark.line + 1, "merge keys (<<) are not supported")
            key = _scalar(key_node, scalars)
            if key in out:
                raise YamlError(key_node.start_mark.line + 1, f"duplicate key '{key}'")
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*path, key), lines, budget, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, budget, scalars) for i, item in enumerate(node.value)]
    return _scalar(node, scalars)


def _scalar(node: yaml.Node, scalars: yaml.SafeLoader) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlError(node.start_mark.line + 1, "keys must be plain values")
    try:
        return scalars.construct_object(node, deep=True)
    except (ValueError, KeyError, AttributeError, OverflowError, yaml.YAMLError) as exc:
        # A value its tag cannot hold: 2026-02-30, !!int abc, !!bool maybe, an int of more than 4300 digits.
        value = str(node.value)
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise YamlError(
            node.start_mark.line + 1, f"invalid YAML value {shown!r} for {node.tag} ({type(exc).__name__})"
        ) from None
