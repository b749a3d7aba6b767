"""Rates as token buckets: how often something may happen, and the bucket that counts it.

:class:`Rate` is a declaration (a contract's per-method rate, the App's limits);
:class:`TokenBucket` applies one. Nothing here does I/O or reads a clock: callers pass the
time in.
"""

from __future__ import annotations

import math

import msgspec

__all__ = ("Rate", "TokenBucket")


class Rate(msgspec.Struct, frozen=True):
    """A token-bucket rate: ``count`` calls per ``per`` seconds, bursts of up to ``burst``.

    ``Rate(100)`` allows 100 calls a second on average and 100 at once; ``Rate(10, per=60,
    burst=20)`` allows 10 a minute, 20 at once.
    """

    count: float
    per: float = 1.0
    burst: float | None = None

    def __post_init__(self) -> None:
        if not (self.count > 0 and self.per > 0 and math.isfinite(self.count / self.per)):
            raise ValueError(f"a rate needs a positive count and period, got {self.count}/{self.per}")
        if self.burst is not None and not self.burst >= 1:
            raise ValueError(f"a burst must be at least 1, got {self.burst}")

    @property
    def capacity(self) -> float:
        """The largest burst: ``burst``, or ``count`` when no burst is given."""
        return self.count if self.burst is None else self.burst

    @property
    def per_second(self) -> float:
        """Tokens added per second."""
        return self.count / self.per


class TokenBucket:
    """A token bucket filled at ``rate.per_second`` up to ``rate.capacity``; starts full."""

    __slots__ = ("_at", "_capacity", "_fill", "_tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self._capacity = rate.capacity
        self._fill = rate.per_second
        self._tokens = self._capacity
        self._at = now

    def take(self, now: float) -> float:
        """Take one token if there is one: 0.0. Otherwise take none and return the seconds
        until one will be there."""
        tokens = self._tokens
        if tokens < self._capacity:
            tokens += (now - self._at) * self._fill
            if tokens > self._capacity:
                tokens = self._capacity
        self._at = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self._fill
