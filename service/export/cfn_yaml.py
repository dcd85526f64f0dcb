"""CloudFormation's short-form intrinsic functions (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``) as YAML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["GetAtt", "If", "Ref", "Sub", "dump"]


@dataclass(frozen=True, slots=True)
class Ref:
    name: str


@dataclass(frozen=True, slots=True)
class GetAtt:
    resource: str
    attribute: str


@dataclass(frozen=True, slots=True)
class Sub:
    template: str


@dataclass(frozen=True, slots=True)
class If:
    condition: str
    then: Any
    otherwise: Any


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order given, long strings unwrapped, no anchors (CloudFormation refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _ref(dumper: yaml.SafeDumper, value: Ref) -> yaml.Node:
    return dumper.represent_scalar("!Ref", value.name)


def _get_att(dumper: yaml.SafeDumper, value: GetAtt) -> yaml.Node:
    return dumper.represent_scalar("!GetAtt", f"{value.resource}.{value.attribute}")


def _sub(dumper: yaml.SafeDumper, value: Sub) -> yaml.Node:
    return dumper.represent_scalar("!Sub", value.template)


def _if(dumper: yaml.SafeDumper, value: If) -> yaml.Node:
    return dumper.represent_sequence("!If", [value.condition, value.then, value.otherwise])


_Dumper.add_representer(Ref, _ref)
_Dumper.add_representer(GetAtt, _get_att)
_Dumper.add_representer(Sub, _sub)
_Dumper.add_representer(If, _if)


def dump(template: dict[str, Any], header: str) -> str:
    """The template as YAML, after a comment ``header`` (one line per line of it)."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(template, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1_000_000)
    return comment + body
