"""The pure core: compiled rules in, recommendation out. No I/O, no clock, no randomness."""

from service.engine.compiled import CompiledRuleset, compile_ruleset
from service.engine.evaluate import ProfileRejected, evaluate, profile_facts

__all__ = ["CompiledRuleset", "ProfileRejected", "compile_ruleset", "evaluate", "profile_facts"]
