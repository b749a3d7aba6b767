"""Partial matching of results and pushes against what a test expects.

``expected`` describes what must hold of ``actual``, recursively:

- a dict: each of its keys is present in ``actual`` (a dict, or a Struct, dataclass or
  other object with attributes) and its value matches; other keys of ``actual`` are free.
  A key may be the Python field name (``message_id``) or the wire name (``messageId``);
- a Struct or dataclass: every one of its fields matches, as a dict of its fields would;
- a list or tuple: ``actual`` is a sequence of the same length whose items match in order;
- a class: ``actual`` is an instance of it (``{"id": str}``);
- anything else: ``expected == actual`` (so ``unittest.mock.ANY`` and ``pytest.approx`` work).

:func:`mismatches` lists what does not hold, one line each with its path
(``$.messages[0].text: expected 'hi', got 'hello'``).
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Mapping, Sequence
from typing import cast

import msgspec

__all__ = ("assert_matches", "mismatches", "shown")

_MISSING = object()
_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 8
_repr.maxlevel = 4

MAX_LINES = 20
"""How many mismatches :func:`mismatches` lists at most."""


def shown(value: object) -> str:
    """``repr(value)``, cut short when long."""
    return _repr.repr(value)


def mismatches(actual: object, expected: object) -> list[str]:
    """What of ``expected`` does not hold of ``actual``, one line each (empty: it matches).

    At most :data:`MAX_LINES` lines; a last line says how many more there were.
    """
    found: list[str] = []
    _compare(actual, expected, "$", found)
    if len(found) > MAX_LINES:
        more = len(found) - MAX_LINES
        found = [*found[:MAX_LINES], f"... and {more} more"]
    return found


def assert_matches(actual: object, expected: object) -> None:
    """Raise AssertionError listing the mismatches if ``actual`` does not match ``expected``."""
    problems = mismatches(actual, expected)
    if problems:
        raise AssertionError(describe(actual, problems))


def describe(actual: object, problems: list[str]) -> str:
    """The text of a failed match: each mismatch, then the value that was checked."""
    lines = ["does not match:", *(f"  {line}" for line in problems), f"actual: {shown(actual)}"]
    return "\n".join(lines)


def _compare(actual: object, expected: object, path: str, found: list[str]) -> None:
    if isinstance(expected, Mapping):
        _compare_fields(actual, cast("Mapping[object, object]", expected), path, found)
    elif isinstance(expected, msgspec.Struct) or _is_dataclass(expected):
        if not (_is_mapping(actual) or _has_fields(actual)):
            found.append(f"{path}: expected {shown(expected)}, got {shown(actual)}")
            return
        _compare_fields(actual, _fields_of(expected), path, found)
    elif isinstance(expected, (list, tuple)):
        items: Sequence[object] = cast("Sequence[object]", expected)
        if not _is_sequence(actual):
            found.append(f"{path}: expected a list of {len(items)}, got {shown(actual)}")
            return
        got: Sequence[object] = cast("Sequence[object]", actual)
        if len(got) != len(items):
            found.append(f"{path}: expected {len(items)} items, got {len(got)}: {shown(actual)}")
            return
        for index, (item, want) in enumerate(zip(got, items, strict=True)):
            _compare(item, want, f"{path}[{index}]", found)
    elif isinstance(expected, type) and not isinstance(actual, type):
        if not isinstance(actual, expected):
            found.append(f"{path}: expected an instance of {expected.__name__}, got {shown(actual)}")
    elif (isinstance(expected, bool) and not isinstance(actual, bool)) or not _equal(expected, actual):
        found.append(f"{path}: expected {shown(expected)}, got {shown(actual)}")


def _equal(expected: object, actual: object) -> bool:
    try:
        return bool(expected == actual)
    except Exception:
        return False


def _compare_fields(actual: object, expected: Mapping[object, object], path: str, found: list[str]) -> None:
    if not (_is_mapping(actual) or _has_fields(actual)):
        found.append(f"{path}: expected an object with {_keys(expected)}, got {shown(actual)}")
        return
    for key, want in expected.items():
        value = _field(actual, key)
        where = f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{key!r}]"
        if value is _MISSING:
            found.append(f"{where}: missing (expected {shown(want)})")
        else:
            _compare(value, want, where, found)


def _keys(expected: Mapping[object, object]) -> str:
    names = ", ".join(str(key) for key in list(expected)[:5])
    return f"fields {names}" if names else "no fields"


def _is_mapping(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple))


def _is_dataclass(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _has_fields(value: object) -> bool:
    """Whether ``value`` has named fields: a Struct, a dataclass, a named tuple, or an
    object with attributes of its own (a ``__dict__`` or ``__slots__``)."""
    return (
        isinstance(value, msgspec.Struct)
        or _is_dataclass(value)
        or hasattr(value, "_fields")
        or hasattr(value, "__dict__")
        or bool(getattr(type(value), "__slots__", None))
    )


def _fields_of(value: object) -> dict[object, object]:
    if isinstance(value, msgspec.Struct):
        return {name: getattr(value, name) for name in value.__struct_fields__}
    return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}  # type: ignore[arg-type]


def _field(actual: object, key: object) -> object:
    """``actual[key]``, or its attribute ``key``, or the Struct field whose wire name is ``key``."""
    if isinstance(actual, Mapping):
        return cast("Mapping[object, object]", actual).get(key, _MISSING)
    if not isinstance(key, str):
        return _MISSING
    if isinstance(actual, msgspec.Struct):
        names = actual.__struct_fields__
        if key in names:
            return getattr(actual, key)
        encoded = actual.__struct_encode_fields__
        if key in encoded:
            return getattr(actual, names[encoded.index(key)])
        return _MISSING
    return getattr(actual, key, _MISSING)
