"""advisor: rule-based advice for ML inference hosting on Amazon SageMaker, every decision audited.

``__version__`` is the one place the release's version is written: ``pyproject.toml`` reads it (hatch's
``[tool.hatch.version]``), and every audited decision records it as its ``engine_version`` beside the ruleset, so
that replay and ``rules impact`` can tell a change of the engine from a change of the rules. Raise it with every
release that changes what the engine answers for some profile under the same ruleset.
"""

__version__ = "0.3.0.dev0"
