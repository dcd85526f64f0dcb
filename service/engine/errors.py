"""The engine's one refusal: a profile valid in shape that cannot be advised on (answered as 422)."""

from __future__ import annotations

__all__ = ["ProfileRejected"]


class ProfileRejected(Exception):
    """The profile is valid in shape but impossible to advise on (answered as 422).

    ``code`` is kebab-case (``model-does-not-fit``) and becomes the problem's type URI; ``field``
    is the dotted path of the input to change, when one input is to blame; ``rule_id`` the rule that
    refused, when a rule did (the hosting table's refusals).
    """

    def __init__(self, code: str, message: str, field: str | None = None, rule_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field, self.rule_id = code, message, field, rule_id
