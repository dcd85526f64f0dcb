"""Finding 3 and 4(a) of the security review: rule files arriving over HTTP cannot make the loader build millions
of nodes or recurse until the stack runs out.

Before: the node cap was per file (64 files of 200,000 nodes each took 12-15 s), and 900 nested brackets raised
RecursionError (an unhandled 500 with a 200 KB traceback in the log)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.rulebook.loader import RulesetInvalid, load_ruleset, parse_ruleset, ruleset_files
from service.rulebook.safe_yaml import MAX_YAML_DEPTH, MAX_YAML_NODES, NodeBudget, parse_yaml

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def _bomb_file(levels: int = 5, width: int = 10) -> str:
    """An alias chain: ``width ** levels`` scalars once expanded, from a few hundred bytes."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _messages(files: dict[str, str]) -> list[str]:
    with pytest.raises(RulesetInvalid) as info:
        parse_ruleset(files, label="candidate")
    return [str(e) for e in info.value.errors]


def test_one_node_budget_covers_every_file_of_a_ruleset() -> None:
    one_file = _bomb_file(levels=4)  # 10**4 scalars: well under the budget alone
    assert 10**4 * 2 < MAX_YAML_NODES < 10**4 * 64
    files = dict(ruleset_files(RULES_DIR)) | {f"tables/t{i}.yaml": one_file for i in range(64)}
    messages = _messages(files)
    refused = [m for m in messages if f"more than {MAX_YAML_NODES} YAML nodes in all its files" in m]
    # Once the budget is spent every further file is refused: at most the budget's worth of nodes is built.
    assert len(refused) >= 64 - MAX_YAML_NODES // 10**4
    # The files parsed before the budget ran out are reported for what they are (not tables), the rest refused.
    assert all("candidate/tables/t" in m for m in refused)


def test_the_shipped_rules_are_far_inside_the_budget() -> None:
    load_ruleset(RULES_DIR)  # raises if over


@pytest.mark.parametrize(
    "text",
    [
        "[" * 900 + "]" * 900,  # flow style: PyYAML's composer recursed once per level
        "".join("  " * i + "- \n" for i in range(200)),  # block style
        "a: " + "{b: " * (MAX_YAML_DEPTH + 1) + "1" + "}" * (MAX_YAML_DEPTH + 1),
    ],
    ids=["flow-900", "block-200", "mapping-just-over"],
)
def test_deep_nesting_is_refused_with_its_line(text: str) -> None:
    messages = _messages(dict(ruleset_files(RULES_DIR)) | {"ruleset.yaml": text})
    assert any(f"nested more than {MAX_YAML_DEPTH} levels deep" in m for m in messages), messages


def test_nesting_at_the_limit_is_accepted_by_the_parser() -> None:
    data, _ = parse_yaml("[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH, NodeBudget())
    depth = 0
    while isinstance(data, list):
        depth, data = depth + 1, data[0] if data else None
    assert depth == MAX_YAML_DEPTH


def test_aliases_cannot_nest_deeper_than_what_was_composed() -> None:
    nested = "[" * 40 + "x" + "]" * 40
    text = f"a: &a {nested}\nb: &b {'[' * 30}*a{']' * 30}\n"  # each composed under the limit, 70 once expanded
    messages = _messages(dict(ruleset_files(RULES_DIR)) | {"ruleset.yaml": text})
    assert any("once its aliases are expanded" in m for m in messages), messages


def test_a_character_yaml_does_not_allow_is_a_file_error() -> None:
    messages = _messages(dict(ruleset_files(RULES_DIR)) | {"ruleset.yaml": "\x14"})
    assert any(m.startswith("candidate/ruleset.yaml: invalid YAML: unacceptable character") for m in messages), messages


@pytest.mark.parametrize(
    "value",
    ["2026-02-30", "2026-12-03T25:00:00Z", "1" * 5000, "!!bool maybe", "!!int abc", "!!float abc", "!!timestamp abc"],
)
def test_a_value_its_tag_cannot_hold_is_a_file_error(value: str) -> None:
    """The second reader's finding: these raised ValueError, KeyError or AttributeError (an unhandled 500)."""
    messages = _messages(dict(ruleset_files(RULES_DIR)) | {"tables/x.yaml": f"a: {value}\n"})
    assert any(m.startswith("candidate/tables/x.yaml:1: invalid YAML value") for m in messages), messages


def test_parsing_keeps_no_node_once_done() -> None:
    """The second reader's finding: one shared constructor kept every scalar ever parsed (a worker grew ~20 MB per
    impact request). Each parse now has its own; what it built is freed with its result."""
    import gc
    import weakref

    import yaml

    built: list[weakref.ref[yaml.Node]] = []
    original = yaml.SafeLoader.construct_object

    def tracking(self: yaml.SafeLoader, node: yaml.Node, deep: bool = False) -> object:
        built.append(weakref.ref(node))
        return original(self, node, deep=deep)

    yaml.SafeLoader.construct_object = tracking  # type: ignore[method-assign]
    try:
        parse_yaml("a: [" + ", ".join(["1"] * 1000) + "]", NodeBudget())
    finally:
        yaml.SafeLoader.construct_object = original  # type: ignore[method-assign]
    gc.collect()
    assert len(built) > 1000
    assert all(ref() is None for ref in built)
