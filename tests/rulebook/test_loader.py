"""Loading rule files: every error names file, line and rule; identity is a content hash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.rulebook.loader import RulesetInvalid, load_ruleset, ruleset_sha256

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target, ignore=shutil.ignore_patterns("tests", "schema", "README.md"))
    return target


def _errors(directory: Path) -> list[str]:
    with pytest.raises(RulesetInvalid) as info:
        load_ruleset(directory, label="rules")
    return [str(e) for e in info.value.errors]


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


class TestErrors:
    def test_misspelt_key_names_file_line_and_rule(self, rules_copy: Path) -> None:
        scaling = rules_copy / "tables" / "scaling.yaml"
        _replace(scaling, "scale_in_below: 0.3", "scale_in_belwo: 0.3")
        line = _line_of(scaling, "scale_in_belwo")
        errors = _errors(rules_copy)
        assert f"rules/tables/scaling.yaml:{line} rule 'bursty-step': unknown field 'scale_in_belwo'" in errors

    def test_unknown_condition_field_suggests_the_right_one(self, rules_copy: Path) -> None:
        family = rules_copy / "tables" / "family.yaml"
        _replace(family, "      workload.bound: memory\n", "      bound: memory\n")
        line = _line_of(family, "      bound: memory")
        errors = _errors(rules_copy)
        assert errors == [
            f"rules/tables/family.yaml:{line} rule 'memory-bound': field 'bound': unknown field "
            "(did you mean workload.bound?)"
        ]

    def test_value_outside_the_enum(self, rules_copy: Path) -> None:
        family = rules_copy / "tables" / "family.yaml"
        _replace(family, "workload.bound: memory", "workload.bound: ram")
        assert any("rule 'memory-bound'" in e and "'ram' is not one of" in e for e in _errors(rules_copy))

    def test_invalid_yaml_names_the_line(self, rules_copy: Path) -> None:
        (rules_copy / "tables" / "sizing.yaml").write_text("table: sizing\nrules: [\n  - id: x\n")
        errors = _errors(rules_copy)
        assert len(errors) == 1 and errors[0].startswith("rules/tables/sizing.yaml:") and "invalid YAML" in errors[0]

    def test_duplicate_rule_id_is_reported_at_the_duplicate_naming_the_first(self, rules_copy: Path) -> None:
        family = rules_copy / "tables" / "family.yaml"
        first = _line_of(family, "id: memory-bound")
        duplicate = _line_of(family, "id: graph-models")
        assert first < duplicate
        _replace(family, "id: graph-models", "id: memory-bound")
        assert _errors(rules_copy) == [
            f"rules/tables/family.yaml:{duplicate} rule 'memory-bound': duplicate id: "
            f"first used at rules/tables/family.yaml:{first}"
        ]

    def test_rule_ids_are_unique_across_tables(self, rules_copy: Path) -> None:
        family, scaling = rules_copy / "tables" / "family.yaml", rules_copy / "tables" / "scaling.yaml"
        first = _line_of(family, "id: memory-bound")
        _replace(scaling, "id: bursty-step", "id: memory-bound")
        again = _line_of(scaling, "id: memory-bound")
        assert _errors(rules_copy) == [
            f"rules/tables/scaling.yaml:{again} rule 'memory-bound': duplicate id: "
            f"first used at rules/tables/family.yaml:{first}"
        ]

    def test_a_missing_rules_directory_is_named(self, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere" / "rules"
        with pytest.raises(RulesetInvalid) as info:
            load_ruleset(missing)
        assert str(info.value) == f"{missing}: no such rules directory ({missing})"

    def test_a_missing_file_is_named_under_the_label(self, rules_copy: Path) -> None:
        (rules_copy / "catalog.yaml").unlink()
        assert _errors(rules_copy) == ["rules/catalog.yaml: file is missing"]

    def test_missing_table_file(self, rules_copy: Path) -> None:
        (rules_copy / "tables" / "availability.yaml").unlink()
        assert _errors(rules_copy) == ["rules/tables: missing table(s): availability"]

    def test_decision_fields_only_after_their_table(self, rules_copy: Path) -> None:
        family = rules_copy / "tables" / "family.yaml"
        _replace(family, "      workload.bound: memory\n", "      decision.multi_az: true\n")
        assert any("is decided after table 'family' runs" in e for e in _errors(rules_copy))

    def test_alias_bomb_is_refused(self, rules_copy: Path) -> None:
        lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 9)]
        (rules_copy / "ruleset.yaml").write_text("\n".join(lines) + "\n")
        assert any("alias bomb" in e for e in _errors(rules_copy))

    def test_python_tags_are_not_constructed(self, rules_copy: Path) -> None:
        (rules_copy / "ruleset.yaml").write_text("version: !!python/object/apply:os.system ['true']\n")
        assert any("invalid YAML" in e or "constructor" in e for e in _errors(rules_copy))


class TestIdentity:
    def test_same_files_same_hash(self, rules_copy: Path) -> None:
        assert load_ruleset(rules_copy).sha256 == load_ruleset(RULES_DIR).sha256

    def test_any_change_changes_the_hash(self, rules_copy: Path) -> None:
        before = load_ruleset(rules_copy).sha256
        _replace(rules_copy / "catalog.yaml", "currency: USD", "currency: USD  # a comment")
        assert load_ruleset(rules_copy).sha256 != before

    def test_line_endings_do_not_change_the_hash(self, rules_copy: Path) -> None:
        before = load_ruleset(rules_copy).sha256
        path = rules_copy / "ruleset.yaml"
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
        assert load_ruleset(rules_copy).sha256 == before

    def test_hash_is_of_the_documented_canonical_form(self) -> None:
        assert ruleset_sha256({"b.yaml": "2\n", "a.yaml": "1\n"}) == ruleset_sha256({"a.yaml": "1\n", "b.yaml": "2\n"})
        import hashlib

        expected = hashlib.sha256(b'[["a.yaml","1\\n"],["b.yaml","2\\n"]]').hexdigest()
        assert ruleset_sha256({"a.yaml": "1\n", "b.yaml": "2\n"}) == expected
