"""How deeply JSON text nests, found without decoding it.

msgspec decodes arrays and objects recursively: around depth 1000 it raises
``RecursionError`` (not a ``msgspec.DecodeError``), and data that decodes but nests
deeply can still break recursive Python code further on. :func:`too_deep` checks a
payload before it is decoded. It reduces the text to its bracket skeleton with C-level
``bytes`` operations and matches that against one regular expression, in time linear in
the length of the text whatever its shape. That costs a fraction of decoding a payload of
arrays and objects; text made mostly of strings, which msgspec decodes very fast, costs
up to a few times as much as decoding it.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from itertools import accumulate, chain, repeat
from operator import sub

__all__ = ("too_deep",)

_COUNT_FIRST_UP_TO = 4096
"""Up to this length, counting brackets first is cheaper than building the skeleton."""

_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_ALL_BUT_BRACKETS_AND_QUOTES = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_ALL_BUT_BRACKETS_QUOTES_AND_ESCAPES = bytes(sorted(set(range(256)) - set(b'[]{}"\\/bfnrtu')))
"""Deletes every byte that is no bracket, no quote, no backslash and no byte that may
follow a backslash in a valid escape, so that escapes stay pairs of adjacent bytes."""

_MAX_PATTERN_LEVELS = 128
"""The deepest limit checked by one nested pattern alone.

Python's ``re`` parser recurses about twice per level of nesting, so much deeper patterns
could hit the recursion limit; deeper limits are checked with a slower walk.
"""

_POSSESSIVE_LEVEL = (b"(?:\\[", b"\\])*+")
"""The text before and after the inner levels in one level of :func:`_within`'s pattern."""
_ATOMIC_LEVEL = (b"(?>(?:\\[", b"\\])*)")
"""The same level with an atomic group instead of a possessive repeat: about 3x slower.

Before Python 3.11.5 possessive repeats could match wrongly (CPython gh-100061,
gh-106052), so those versions take this one.
"""
_LEVEL = _POSSESSIVE_LEVEL if sys.version_info >= (3, 11, 5) else _ATOMIC_LEVEL


def too_deep(data: bytes | bytearray | memoryview, limit: int) -> bool:
    """Whether the JSON text `data` nests arrays/objects deeper than `limit` levels.

    A scalar has depth 0, ``[]`` and ``{}`` depth 1, ``[[1]]`` depth 2 and
    ``{"a":[{}]}`` depth 3; so ``too_deep(b"[[1]]", 2)`` is False and
    ``too_deep(b"[[1]]", 1)`` is True. Brackets inside strings do not count.

    The answer is exact for valid JSON. For text that is not valid JSON it is still never
    False when a reader going from the left, as msgspec does, would open more than
    `limit` arrays and objects before it finds the text invalid. Beyond that, reading
    strings as JSON does (an unescaped quote ends a string; a string that never ends
    runs to the end of the text), the answer for invalid text is:

    * False when at most `limit` ``[`` and ``{`` lie outside strings, whether or not
      the brackets balance;
    * otherwise False exactly when the brackets outside strings balance and nest at most
      `limit` deep, taking ``{`` and ``[`` alike and ``}`` and ``]`` alike: so brackets
      that do not balance, such as ``[[`` or ``]]``, make the text too deep, while a
      mismatched pair such as ``[}`` counts as a pair.

    How an invalid escape such as ``\\q``, or a backslash outside a string, is read is
    left open: a JSON reader stops there.

    Raises:
        ValueError: `limit` is negative.
    """
    if isinstance(data, memoryview):
        data = data.tobytes()  # what follows is bytes operations
    # Nothing nests deeper than the number of opening brackets. For the usual small
    # payload these two counts are all the work there is.
    if len(data) <= _COUNT_FIRST_UP_TO and data.count(b"[") + data.count(b"{") <= limit:
        return False
    if limit < 0:
        raise ValueError(f"the depth limit must be at least 0, got {limit}")
    skeleton = _skeleton(data)
    if skeleton.count(b"[") <= limit or _within(min(limit, _MAX_PATTERN_LEVELS)).fullmatch(skeleton):
        return False
    return limit <= _MAX_PATTERN_LEVELS or _walk_too_deep(skeleton, limit)


def _skeleton(data: bytes | bytearray) -> bytes:
    """The brackets of `data` outside strings, each ``{`` as ``[`` and ``}`` as ``]``.

    It is exact up to where a JSON reader would find `data` invalid, so the depth it
    shows there is the depth the reader reaches.
    """
    if b"\\" in data and b'\\"' in data:
        # Only an escaped quote (``\"`` not itself after an escaped backslash) is no
        # string delimiter. A JSON reader reads backslashes in pairs from the left, and
        # the first backslash of a run is never the second byte of an escape (that would
        # follow another backslash); so removing every ``\\`` and then every ``\"``
        # removes exactly the escaped backslashes and quotes. Deleting first what no
        # escape starts with or pairs with keeps every valid escape a pair of adjacent
        # bytes: up to the first invalid one, where the reader stops, nothing changes.
        data = data.translate(None, _ALL_BUT_BRACKETS_QUOTES_AND_ESCAPES)
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = bytes(data.translate(_BRACES_AS_BRACKETS, _ALL_BUT_BRACKETS_AND_QUOTES))
    quotes = skeleton.count(b'"')
    if not quotes:
        return skeleton
    # A string without a bracket is ``""`` here. Pairing quotes from the left pairs them
    # right up to the first string that holds a bracket: its opening quote ends a run of
    # quotes of odd length and stays unpaired. So if all quotes pair, no string holds a
    # bracket and deleting the quotes leaves the skeleton.
    if 2 * skeleton.count(b'""') == quotes:
        return skeleton.translate(None, b'"')
    # Otherwise keep what lies outside strings: every other piece between quotes. Two
    # adjacent quotes are an empty string or an empty gap between two strings, so
    # removing them first changes nothing but leaves fewer pieces.
    return b"".join(skeleton.replace(b'""', b"").split(b'"')[::2])


@lru_cache(maxsize=16)
def _within(levels: int) -> re.Pattern[bytes]:
    """A pattern matching the balanced bracket sequences at most `levels` deep.

    It nests ``(?:\\[ ... \\])*+`` `levels` times. Its repeats never give back what they
    matched, so a match never backtracks and takes time linear in the skeleton's length.
    """
    return _nested(levels, _LEVEL)


def _nested(levels: int, level: tuple[bytes, bytes]) -> re.Pattern[bytes]:
    """`levels` levels of `level` nested in one another; no level matches only ``b""``."""
    opening, closing = level
    return re.compile(opening * levels + closing * levels)


def _walk_too_deep(skeleton: bytes, limit: int) -> bool:
    """Whether `skeleton` does not balance or nests deeper than `limit`, piece by piece.

    Each piece between ``][`` pairs is some ``[`` then some ``]``, so the depth peaks
    after each piece's ``[`` and dips after its ``]`` and the ``]`` that follows it.
    """
    pieces = skeleton.split(b"][")
    opened = list(accumulate(map(len, map(bytes.rstrip, pieces, repeat(b"]")))))
    closed = list(accumulate(map(len, map(bytes.lstrip, pieces, repeat(b"[")))))
    # Each ``][`` between two pieces closes one and opens one: no change to the peaks.
    if max(map(sub, opened, chain((0,), closed))) > limit or opened[-1] != closed[-1]:
        return True
    return len(pieces) > 1 and min(map(sub, opened[:-1], closed[:-1])) < 1
