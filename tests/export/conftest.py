from __future__ import annotations

from pathlib import Path

import pytest

from service.engine import CompiledRuleset, compile_ruleset
from service.rulebook.loader import load_ruleset

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="session")
def ruleset() -> CompiledRuleset:
    return compile_ruleset(load_ruleset(RULES_DIR))
