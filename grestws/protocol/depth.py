"""How deeply JSON text nests, found without decoding it.

msgspec decodes arrays and objects recursively: around depth 1000 it raises
``RecursionError`` (not a ``msgspec.DecodeError``), and data that decodes but nests
deeply can still break recursive Python code further on. :func:`too_deep` checks a
payload before it is decoded, with a few C-level ``bytes`` operations and one
regular-expression match, so it adds a fraction of the cost of decoding.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ("too_deep",)

_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_ALL_BUT_BRACKETS_AND_QUOTES = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_QUOTE = b'"'
_RUNS = re.compile(rb"\[+|\]+")

_MAX_PATTERN_LEVELS = 128
"""The deepest limit checked with one nested pattern.

Compiling the pattern recurses about twice per level in Python's ``re`` parser, so
deeper patterns could hit the recursion limit; deeper limits take a slower walk.
"""


def too_deep(data: bytes, limit: int) -> bool:
    """Whether the JSON text `data` nests arrays/objects deeper than `limit` levels.

    A scalar has depth 0, ``[]`` and ``{}`` depth 1, ``[[1]]`` depth 2 and
    ``{"a":[{}]}`` depth 3; so ``too_deep(b"[[1]]", 2)`` is False and
    ``too_deep(b"[[1]]", 1)`` is True. Brackets inside strings do not count.

    The answer is exact for valid JSON. For text that is not valid JSON it is never
    False when a parser reading the text from the left (as msgspec does) would open
    more than `limit` containers before it found the text invalid; beyond that:

    * text with at most `limit` ``[`` and ``{`` bytes in all (strings included) is
      never too deep;
    * otherwise the answer is False exactly when the brackets outside strings,
      ``{`` and ``[`` alike and ``}`` and ``]`` alike, balance and nest at most
      `limit` deep; strings end at the first quote not escaped by a backslash, and a
      string that never ends runs to the end of the text. So unbalanced brackets,
      such as ``[[`` or ``]]`` beyond the count above, are too deep, and a mismatch
      such as ``[}`` counts as a pair.

    Raises:
        ValueError: `limit` is negative.
    """
    # Nothing can nest deeper than the number of opening brackets: for the usual small
    # payload this count is all the work there is.
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if limit < 0:
        raise ValueError(f"the depth limit must be at least 0, got {limit}")
    skeleton = _skeleton(data)
    if _within(min(limit, _MAX_PATTERN_LEVELS)).fullmatch(skeleton):
        return False
    return limit <= _MAX_PATTERN_LEVELS or _walk_too_deep(skeleton, limit)


def _skeleton(data: bytes) -> bytes:
    """The brackets of `data` outside strings, each ``{`` as ``[`` and ``}`` as ``]``."""
    # Only a backslash right before a quote changes where strings end, and then only
    # if it is not itself escaped. Backslash runs are read in pairs from the left, as
    # a JSON reader does (the first backslash of a run is never the second byte of an
    # escape), so removing every ``\\`` pair and then every ``\"`` leaves only the
    # quotes that delimit strings. Escapes never hold a bracket.
    if b"\\" in data and b'\\"' in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(_BRACES_AS_BRACKETS, _ALL_BUT_BRACKETS_AND_QUOTES)
    quotes = skeleton.count(_QUOTE)
    if not quotes:
        return skeleton
    # Strings without a bracket are ``""`` here. Pairing quotes from the left pairs
    # them correctly up to the first string that holds a bracket, whose opening
    # quote ends a run of odd length and is left unpaired; so if every quote pairs,
    # no string holds a bracket and deleting the quotes leaves the skeleton.
    if 2 * skeleton.count(b'""') == quotes:
        return skeleton.translate(None, _QUOTE)
    # Otherwise keep what lies between a closing and the next opening quote. Removing
    # any two adjacent quotes first (an empty string, or an empty gap between two
    # strings) changes none of that, and leaves fewer pieces to split.
    return b"".join(skeleton.replace(b'""', b"").split(_QUOTE)[::2])


@lru_cache(maxsize=16)
def _within(levels: int) -> re.Pattern[bytes]:
    """A pattern matching the balanced bracket sequences at most `levels` deep.

    It nests ``(?:\\[ ... \\])*+`` `levels` times; the possessive ``*+`` never
    backtracks, so a match takes time linear in the length of the skeleton.
    """
    return re.compile(b"(?:\\[" * levels + b"\\])*+" * levels)


def _walk_too_deep(skeleton: bytes, limit: int) -> bool:
    """Whether `skeleton` is unbalanced or nests deeper than `limit`, run by run."""
    depth = 0
    for run in _RUNS.finditer(skeleton):
        width = run.end() - run.start()
        if skeleton[run.start()] == 0x5B:  # "["
            depth += width
            if depth > limit:
                return True
        else:
            depth -= width
            if depth < 0:
                return True
    return depth != 0
