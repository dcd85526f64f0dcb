"""Decoding a JSON document into a contract type, the one way every part of the service does it.

The decide path, replay, impact and what-if all decode a profile with :func:`decode_as`, so that a profile the
service once answered decodes again the same way: JSON text to builtins (msgspec), then a strict conversion to the
type. JSON has one kind of number and the published JSON Schema takes ``2.0`` as the integer ``2``; so does this.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

__all__ = ["convert_strictly", "decode_as", "integral_floats_as_ints"]

T = TypeVar("T")

_decode = msgspec.json.Decoder().decode


def decode_as(document: bytes | str, type_: type[T]) -> T:
    """``document`` decoded as ``type_``.

    Raises:
        msgspec.DecodeError: not JSON, or (``msgspec.ValidationError``, a subclass) not a ``type_``.
    """
    return convert_strictly(_decode(document), type_)


def convert_strictly(value: Any, type_: type[T]) -> T:
    """Builtins ``value`` converted to ``type_`` strictly (``"150"`` is not a number), integral floats as ints."""
    try:
        return msgspec.convert(value, type_, strict=True)
    except msgspec.ValidationError:
        return msgspec.convert(integral_floats_as_ints(value), type_, strict=True)


def integral_floats_as_ints(value: Any) -> Any:
    if type(value) is float:
        return int(value) if value.is_integer() else value
    if type(value) is dict:
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if type(value) is list:
        return [integral_floats_as_ints(item) for item in value]
    return value
