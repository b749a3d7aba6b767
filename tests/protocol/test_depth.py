"""``too_deep``: how deeply JSON text nests, checked before msgspec decodes it."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import time
from functools import cache
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grestws.protocol.depth import (
    _ATOMIC_LEVEL,
    _MAX_PATTERN_LEVELS,
    _POSSESSIVE_LEVEL,
    _nested,
    _walk_too_deep,
    too_deep,
)

LIMIT = 64


def dumps(value: Any, *, ensure_ascii: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ensure_ascii).encode()


def nest(depth: int, inner: bytes = b"1") -> bytes:
    """``depth`` arrays around ``inner``."""
    return b"[" * depth + inner + b"]" * depth


def wide(depth: int) -> bytes:
    """An array of three arrays, ``depth`` deep in all, with more brackets than ``depth``."""
    return b"[" + b",".join([nest(depth - 1)] * 3) + b"]"


def mixed(depth: int) -> bytes:
    """Arrays and objects in turn, ``depth`` deep."""
    opening = [b"[", b'{"a":'] * depth
    closing = [b"]", b"}"] * depth
    return b"".join(opening[:depth]) + b"1" + b"".join(reversed(closing[:depth]))


def depth_of(value: Any) -> int:
    """The reference: the depth of a decoded value."""
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def case(data: bytes, limit: int, expected: bool, name: str) -> Any:
    return pytest.param(data, limit, expected, id=f"{name}-limit{limit}")


# Valid JSON: the expectations are checked against json.loads as well.
VALID = [
    case(b"1", 0, False, "number"),
    case(b"null", 0, False, "null"),
    case(b'"[[[{{{"', 0, False, "string of brackets"),
    case(b"[]", 0, True, "empty array"),
    case(b"[]", 1, False, "empty array"),
    case(b"{}", 0, True, "empty object"),
    case(b"{}", 1, False, "empty object"),
    case(b"[[1]]", 2, False, "docstring"),
    case(b"[[1]]", 1, True, "docstring"),
    case(b'{"a":[{}]}', 3, False, "docstring"),
    case(b'{"a":[{}]}', 2, True, "docstring"),
    case(b' \t\r\n[ [ 1 ,\n\t2 ] , { "a" : [ ] } ]\n', 3, False, "whitespace"),
    case(b' \t\r\n[ [ 1 ,\n\t2 ] , { "a" : [ ] } ]\n', 2, True, "whitespace"),
    case(b"[1, -2.5e+10, 0.0, 3E-7, true, false, null, [1e1]]", 2, False, "scalars"),
    case(b"[1, -2.5e+10, 0.0, 3E-7, true, false, null, [1e1]]", 1, True, "scalars"),
    case(b'{"a":[{"b":[{"c":[]}]}]}', 6, False, "objects and arrays"),
    case(b'{"a":[{"b":[{"c":[]}]}]}', 5, True, "objects and arrays"),
    case(dumps(["[[[[", "]]]]", "{{", "}}"]), 1, False, "brackets in strings"),
    case(dumps(["[" * 100, "{" * 100]), 1, False, "more brackets in strings than the limit"),
    case(dumps({"[[[": "]]]", "{": "}"}), 1, False, "brackets in keys"),
    case(dumps(["[", ["]", ["{"]]]), 3, False, "strings between arrays"),
    case(dumps(["[", ["]", ["{"]]]), 2, True, "strings between arrays"),
    case(dumps(["]]]]", [[[1]]]]), 4, False, "closing brackets in a string"),
    case(dumps(["]]]]", [[[1]]]]), 3, True, "closing brackets in a string"),
    case(rb'["\"[[[[", 1]', 1, False, "escaped quote"),
    case(rb'["\"", [[1]]]', 2, True, "escaped quote"),
    case(rb'["\\", [[1]]]', 3, False, "escaped backslash before the closing quote"),
    case(rb'["\\", [[1]]]', 2, True, "escaped backslash before the closing quote"),
    case(rb'["\\\"[[[["]', 1, False, "escaped backslash then escaped quote"),
    case(rb'["\\\\", [[1]]]', 2, True, "two escaped backslashes"),
    case(rb'["\\\\\"[[[", 1]', 1, False, "two escaped backslashes then escaped quote"),
    case(rb'["\"\\", [[1]]]', 2, True, "escaped quote then escaped backslash"),
    case(rb'["\n\"[", "\t\\", "\/[", "\u0022[[", "\u005c"]', 1, False, "other escapes"),
    case(rb'["\b\\", ["\f\"]"], ["\u005C\\"]]', 2, False, "other escapes around arrays"),
    case(rb'["\b\\", ["\f\"]"], ["\u005C\\"]]', 1, True, "other escapes around arrays"),
    case(rb'{"a\"[": {"b\\": [1]}}', 3, False, "escapes in keys"),
    case(rb'{"a\"[": {"b\\": [1]}}', 2, True, "escapes in keys"),
    case(dumps(['\\"[' * 50, [['"]']]]), 3, False, "many escapes"),
    case(dumps(['\\"[' * 50, [['"]']]]), 2, True, "many escapes"),
    case(dumps(["é[", "日本[[", {"ключ[": ["😀]"]}], ensure_ascii=False), 3, False, "utf-8"),
    case(dumps(["é[", "日本[[", {"ключ[": ["😀]"]}], ensure_ascii=False), 2, True, "utf-8"),
    case(dumps(["é[", "日本[[", {"ключ[": ["😀]"]}]), 3, False, "ascii escapes"),
    case(dumps(["é[", "日本[[", {"ключ[": ["😀]"]}]), 2, True, "ascii escapes"),
    case(nest(LIMIT), LIMIT, False, "at the limit"),
    case(nest(LIMIT + 1), LIMIT, True, "over the limit"),
    case(wide(LIMIT - 1), LIMIT, False, "under the limit, many brackets"),
    case(wide(LIMIT), LIMIT, False, "at the limit, many brackets"),
    case(wide(LIMIT + 1), LIMIT, True, "over the limit, many brackets"),
    case(b"[" + b"[],{}," * 1000 + b"[[" + nest(LIMIT - 2) + b"]]]", LIMIT, True, "deep at the end"),
    case(dumps([{"a": [i, "x" * 10]} for i in range(300)]), 3, False, "long"),
    case(dumps([{"a": [i, "x" * 10]} for i in range(300)]), 2, True, "long"),
    case(dumps({"blob": "x" * 10_000}), 0, True, "long, few brackets"),
    case(dumps({"blob": "x" * 10_000}), 1, False, "long, few brackets"),
    case(dumps({"blob": "[" * 10_000}), 1, False, "long, brackets in a string"),
    case(dumps([{"t": 'say "hi" [' * 20, "n": [[i]]} for i in range(50)]), 4, False, "long, escapes"),
    case(dumps([{"t": 'say "hi" [' * 20, "n": [[i]]} for i in range(50)]), 3, True, "long, escapes"),
    case(wide(_MAX_PATTERN_LEVELS), _MAX_PATTERN_LEVELS, False, "pattern's deepest"),
    case(wide(_MAX_PATTERN_LEVELS + 1), _MAX_PATTERN_LEVELS, True, "pattern's deepest"),
    case(wide(_MAX_PATTERN_LEVELS + 1), _MAX_PATTERN_LEVELS + 1, False, "walk"),
    case(wide(_MAX_PATTERN_LEVELS + 2), _MAX_PATTERN_LEVELS + 1, True, "walk"),
    case(wide(200), 199, True, "walk"),
    case(wide(200), 200, False, "walk"),
    case(wide(5), 300, False, "walk not needed"),
]

# Not JSON: the answers the docstring promises.
INVALID = [
    case(b"[[", 1, True, "unclosed"),
    case(b"[[", 2, False, "at most limit opening brackets"),
    case(b"]]]]", 0, False, "no opening bracket"),
    case(b"[}", 0, True, "mismatched"),
    case(b"[}", 1, False, "mismatched"),
    case(b"{]", 1, False, "mismatched"),
    case(b"[[}}", 1, True, "mismatched"),
    case(b"[[}}", 2, False, "mismatched"),
    case(b"[]]", 0, True, "closed twice"),
    case(b"[]]", 1, False, "closed twice"),
    case(b"[][", 1, True, "unclosed after a pair"),
    case(b"][" * 3, 2, True, "closed before opened"),
    case(b"][" * 3, 3, False, "closed before opened"),
    case(b"[[]] [[]]", 2, False, "two values"),
    case(b"[[]] [[]]", 1, True, "two values"),
    case(b"[[][]]", 2, False, "no comma"),
    case(b"[] [[[[", 1, True, "unclosed after a value"),
    case(b'["[[[[', 1, False, "unterminated string"),
    case(b'[[["abc', 2, True, "unterminated string"),
    case(b'[[["[]]]', 3, False, "unterminated string"),
    case(b'[[["[]]]', 2, True, "unterminated string"),
    case(b'["abc]]', 0, True, "unterminated string"),
    case(b'["\xc3", [[1]]]', 2, True, "invalid utf-8"),
    case(b'["\xc3", [[1]]]', 3, False, "invalid utf-8"),
    case(b"[" * 300 + b"]" * 299, 250, True, "unclosed, walk"),
    case(b"[[]" * 200, 300, True, "unclosed, walk"),
    case(b"[]]" + b"[]" * 200, 150, True, "closed twice, walk"),
    case(b"[" * 5000, LIMIT, True, "long, unclosed"),
]


@pytest.mark.parametrize(("data", "limit", "expected"), VALID)
def test_valid_json(data: bytes, limit: int, expected: bool) -> None:
    assert (depth_of(json.loads(data)) > limit) is expected
    assert too_deep(data, limit) is expected


@pytest.mark.parametrize(("data", "limit", "expected"), INVALID)
def test_invalid_json(data: bytes, limit: int, expected: bool) -> None:
    with pytest.raises((ValueError, RecursionError)):
        json.loads(data)
    assert too_deep(data, limit) is expected


@pytest.mark.parametrize("data", [b"", b"1", b"[]", b"[" * 10_000], ids=["empty", "scalar", "array", "long"])
def test_a_negative_limit_is_an_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="at least 0"):
        too_deep(data, -1)


# Random JSON, serialised in several ways.

# Strings made mostly of what could confuse a reader: brackets, quotes and backslashes.
TEXTS = st.lists(
    st.sampled_from(["[", "]", "{", "}", '"', "\\", "\\\\", '\\"', "/", "\n", "\t", "u", "\u2028"])
    | st.characters(codec="utf-8"),
    max_size=10,
).map("".join)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXTS
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXTS, children, max_size=4),
    max_leaves=25,
)


@st.composite
def documents(draw: st.DrawFn, max_wraps: int = 70) -> tuple[bytes, int]:
    """JSON text and its depth: a random value, wrapped in a random number of arrays
    and objects, serialised with random escaping, indentation and padding."""
    value = draw(VALUES)
    for kind in draw(st.lists(st.sampled_from(["list", "dict"]), max_size=max_wraps)):
        value = [value] if kind == "list" else {draw(TEXTS): value}
    text = json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 0, 1, "\t", " \r"])),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\t", "\r:\n ")])),
    ).encode()
    pad = b" " * draw(st.sampled_from([0, 5000]))  # past the length counted first
    return pad + text + pad, depth_of(value)


@settings(max_examples=300, deadline=None)
@given(documents(), st.data())
def test_exact_for_random_json(document: tuple[bytes, int], data: st.DataObject) -> None:
    text, depth = document
    limit = data.draw(st.integers(max(0, depth - 2), depth + 2) | st.integers(0, 2 * _MAX_PATTERN_LEVELS))
    assert too_deep(text, limit) is (depth > limit)


# msgspec itself as the judge, on text that is mostly not JSON: with the recursion limit
# set just above the current stack depth, msgspec's RecursionError shows how deep it went.

Outcome = Literal["ok", "invalid", "too deep"]
JUDGED_FROM = 2
"""The smallest limit judged: msgspec's own call takes two levels of headroom."""


def _decode_with_headroom(data: bytes, headroom: int) -> Outcome:
    """Decode `data` with the recursion limit `headroom` above the current depth."""
    old = sys.getrecursionlimit()
    depth = None
    try:
        sys.setrecursionlimit(1)
    except RecursionError as error:  # it names the current depth
        depth = re.search(r"at the recursion depth (\d+)", str(error))
    if depth is None:
        raise ValueError("no depth in the message")
    collecting = gc.isenabled()
    gc.disable()  # no finalizer may run with so little headroom
    try:
        sys.setrecursionlimit(int(depth[1]) + headroom)
        try:
            msgspec.json.decode(data)
        except RecursionError:
            return "too deep"
        except msgspec.DecodeError:
            return "invalid"
        return "ok"
    finally:
        sys.setrecursionlimit(old)
        if collecting:
            gc.enable()


def _headroom_for(limit: int) -> int | None:
    """The headroom at which msgspec decodes ``limit`` nested arrays but not one more.

    Found afresh for each use: how much of the stack a call takes changes once the
    interpreter specialises it, and under a tracer.
    """
    for headroom in range(limit - 3, limit + 10):
        try:
            controls = (
                _decode_with_headroom(nest(limit), headroom),
                _decode_with_headroom(nest(limit + 1), headroom),
            )
        except (RecursionError, ValueError):  # a recursion limit too low to set
            continue
        if controls == ("ok", "too deep"):
            return headroom
    return None


@cache
def _recursion_limit_bounds_msgspec() -> bool:
    """Whether msgspec's depth follows the recursion limit, for arrays and objects alike (it
    does on CPython 3.11)."""
    try:
        for _ in range(100):  # let the interpreter specialise the calls first
            _decode_with_headroom(b"[1]", 10)
    except ValueError:
        return False
    for limit in range(JUDGED_FROM, JUDGED_FROM + 6):
        headroom = _headroom_for(limit)
        if headroom is None:
            return False
        for depth in range(limit + 4):
            for text in (nest(depth), b'{"a":' * depth + b"1" + b"}" * depth, mixed(depth)):
                if _decode_with_headroom(text, headroom) != ("too deep" if depth > limit else "ok"):
                    return False
    return True


def msgspec_judges(data: bytes, limit: int) -> Outcome:
    """Whether msgspec decodes `data`, finds it invalid, or goes more than `limit` deep."""
    if not _recursion_limit_bounds_msgspec():
        pytest.skip("the recursion limit does not bound msgspec on this Python")
    for _ in range(3):
        headroom = _headroom_for(limit)
        outcome = _decode_with_headroom(data, headroom) if headroom is not None else None
        if outcome is not None and _headroom_for(limit) == headroom:
            return outcome
    pytest.fail("msgspec's depth does not follow the recursion limit steadily")


ALPHABET = [b"[", b"]", b"{", b"}", b'"', b",", b":", b" ", b"1", b"\\", b'\\"', b"\\\\", b"u", b"q", b"\xc3"]


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """JSON text with a few bytes inserted, deleted or cut off, or a jumble of JSON's
    bytes."""
    if draw(st.booleans()):
        return b"".join(draw(st.lists(st.sampled_from(ALPHABET), max_size=40)))
    text = draw(documents(max_wraps=12))[0].strip()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "cut"]))
        if edit == "insert":
            text = text[:at] + draw(st.sampled_from(ALPHABET)) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at]
    return text


@settings(max_examples=300, deadline=None)
@given(mangled(), st.integers(JUDGED_FROM, JUDGED_FROM + 6))
def test_never_shallower_than_msgspec_goes(text: bytes, limit: int) -> None:
    # Some error paths take msgspec a level or so deeper (invalid UTF-8 goes through the
    # codec machinery), so running out of headroom is trusted only two levels further.
    if msgspec_judges(text, limit + 2) == "too deep":
        assert too_deep(text, limit)
    elif msgspec_judges(text, limit) == "ok":
        assert not too_deep(text, limit)


def test_msgspec_checks_escapes_in_what_it_skips() -> None:
    """The skeleton relies on this: a reader stops at an invalid escape, even in a value
    it skips, rather than read a backslash and any byte as a pair."""

    class Point(msgspec.Struct):
        x: int

    for escape in (b"\\q", b"\\u12", b"\\\xc3\xa9"):
        text = b'{"x":1,"skipped":"' + escape + b'"}'
        for kind in (Point, msgspec.Raw, dict[str, msgspec.Raw]):
            with pytest.raises(msgspec.DecodeError):
                msgspec.json.decode(text, type=kind)


# The patterns and the walk, on bracket skeletons.


def balanced_within(skeleton: bytes, limit: int) -> bool:
    depth = 0
    for byte in skeleton:
        depth += 1 if byte == ord("[") else -1
        if not 0 <= depth <= limit:
            return False
    return depth == 0


SKELETONS = st.lists(st.sampled_from([b"[", b"]", b"[]", b"[[", b"]]"]), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(SKELETONS | st.integers(0, 12).map(nest).map(lambda text: text.replace(b"1", b"")), st.integers(0, 10))
def test_patterns_and_walk_agree(skeleton: bytes, limit: int) -> None:
    expected = balanced_within(skeleton, limit)
    assert (_nested(limit, _POSSESSIVE_LEVEL).fullmatch(skeleton) is not None) is expected
    assert (_nested(limit, _ATOMIC_LEVEL).fullmatch(skeleton) is not None) is expected
    assert _walk_too_deep(skeleton, limit) is not expected


# Time: linear in the length of the text, whatever its shape.

MIB = 1 << 20


def _fill(unit: bytes) -> bytes:
    return b"[" + b",".join([unit] * (MIB // (len(unit) + 1))) + b"]"


HOSTILE = {
    "flat": _fill(b"[]"),
    "chains at the limit": _fill(nest(LIMIT - 1, b"")),
    "combs at the limit": _fill(b"[[]," * (LIMIT - 2) + b"[]" + b"]" * (LIMIT - 2)),
    "one deep comb": b"[[]," * (MIB // 4) + b"]" * (MIB // 4),
    "flat under 200 levels": b"[" * 200 + b"[]," * (MIB // 3) + b"[]" + b"]" * 200,
    "brackets in strings": _fill(dumps('[[[{{"]]]}}\\[' * 8)),
    "escapes": _fill(dumps('\\"\\\\' * 30 + "[")),
    "all opening": b"[" * MIB,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("limit", [LIMIT, 1000])
def test_a_mebibyte_takes_milliseconds(text: bytes, limit: int) -> None:
    started = time.perf_counter()
    too_deep(text, limit)
    # 1 to 20 ms here (50 ms for the walk that limits over 128 take); the bound only
    # catches time that grows with the depth or the limit.
    assert time.perf_counter() - started < 1.0


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_imports_no_io_library() -> None:
    probe = (
        "import json, sys; import grestws.protocol.depth; "
        "print(json.dumps([n for n in sys.modules if n.partition('.')[0] in ('asyncio', 'websockets')]))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=25, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
