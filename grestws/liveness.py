"""Noticing a peer that went silent: any frame counts, a ping asks, silence ends it.

:class:`Liveness` watches one connection without a task of its own: a loop timer wakes it
once per ``interval``. When nothing has arrived for ``interval`` seconds it sends a ping;
when nothing at all (the pong or any other frame) arrives within ``timeout`` after that,
the peer is declared dead and the connection dropped at once: a dead peer is released
``interval + timeout`` seconds after its last frame, with no closing handshake to wait for.
A busy connection is never pinged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ("Liveness",)


class Liveness:
    """The liveness watch of one connection.

    Args:
        loop: The event loop (its clock and timers).
        interval: Seconds of silence before a ping is sent.
        timeout: Seconds a pinged peer has to send anything.
        ping: Sends a ping; must not raise or wait.
        dead: Drops the connection; must not raise or wait.

    The transport sets :attr:`last_seen` to ``time.monotonic()`` for every frame received
    and calls :meth:`stop` once the connection is closed. Times are
    ``time.monotonic()`` seconds; timers are set by delay, whatever the loop's clock.
    """

    __slots__ = ("_dead", "_interval", "_loop", "_ping", "_pinged_at", "_timeout", "_timer", "last_seen")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        timeout: float | None,
        ping: Callable[[], None],
        dead: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._interval = interval
        self._timeout = timeout
        self._ping = ping
        self._dead = dead
        self._pinged_at: float | None = None
        self.last_seen = time.monotonic()
        self._timer: asyncio.TimerHandle | None = loop.call_later(interval, self._check)

    def stop(self) -> None:
        """Watch no more (the connection is closed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        now = time.monotonic()
        pinged_at = self._pinged_at
        if pinged_at is not None and self.last_seen < pinged_at:
            # Pinged, and nothing since: the peer is gone or stuck.
            self._timer = None
            self._dead()
            return
        self._pinged_at = None
        idle_until = self.last_seen + self._interval
        if now < idle_until:
            self._timer = self._loop.call_later(idle_until - now, self._check)
            return
        self._ping()
        if self._timeout is None:
            self._timer = self._loop.call_later(self._interval, self._check)
            return
        self._pinged_at = now
        # Dead interval + timeout after the last frame, also when this ping is late (a
        # timeout longer than the interval runs past the time the ping was due), yet with
        # time to answer when the loop itself ran late.
        due = idle_until + self._timeout - now
        self._timer = self._loop.call_later(max(due, min(self._timeout, self._interval)), self._check)
