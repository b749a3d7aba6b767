"""Many deadlines on one event-loop timer.

A session has a deadline for every request it waits on and for every handler it runs
(its calls in flight are the keys of one :class:`Deadlines`, those without a deadline at
``math.inf``).
One loop timer per deadline would cost a heap push and a handle per call; :class:`Deadlines`
keeps them in a dict and arms a single timer for the earliest. Adding a deadline later than
the armed one (the usual case: every call gets the same timeout) touches no timer at all.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from time import monotonic
from typing import Generic, TypeVar

__all__ = ("Deadlines",)

K = TypeVar("K")
V = TypeVar("V")


class Deadlines(dict[K, tuple[float, V]], Generic[K, V]):
    """Deadlines by key, each with a value; ``expire(key, value)`` runs for every key whose
    deadline has passed, from a loop callback, once. Deadlines are ``time.monotonic()``
    seconds (the clock of asyncio's own loop; the timer is set by delay, whatever the
    loop's clock).

    It is the dict of each key's ``(deadline, value)``, so that ``len()``, ``in``,
    truth and ``pop(key, None)`` (forgetting a key's deadline: the timer needs nothing)
    cost what they cost a dict, no Python call: a session asks them of every call. Add
    keys with :meth:`add`, which arms the timer.

    Args:
        loop: The event loop whose timer is used.
        expire: Called for each expired key; it must not raise.
    """

    __slots__ = ("_expire", "_loop", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[K, V], None]) -> None:
        super().__init__()
        self._loop = loop
        self._expire = expire
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def add(self, key: K, when: float, value: V) -> None:
        """Expire ``key`` at ``time.monotonic()`` time ``when`` (``math.inf``: never)
        unless it is popped first."""
        self[key] = (when, value)
        if when < self._timer_at:
            self._arm(when)

    def __iter__(self) -> Iterator[K]:
        """The keys, as a snapshot: adding or popping keys while iterating is safe."""
        return iter(list(self.keys()))

    def clear(self) -> None:
        """Forget every deadline and stop the timer."""
        super().clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = math.inf

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(max(when - monotonic(), 0.0), self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        """Expire what is due; re-arm for the earliest deadline left."""
        self._timer = None
        self._timer_at = math.inf
        now = monotonic()
        earliest = math.inf
        due: list[tuple[K, V]] = []
        for key, (when, value) in self.items():
            if when <= now:
                due.append((key, value))
            elif when < earliest:
                earliest = when
        for key, _ in due:
            del self[key]
        if earliest < math.inf:
            self._arm(earliest)
        for key, value in due:
            self._expire(key, value)
