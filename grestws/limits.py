"""What a server allows one peer: rates, calls in flight, deadlines, buffers, connections.

:class:`Limits` holds the settings, set on the :class:`~grestws.app.App` (and per method
with ``@request(rate=..., deadline=...)``). :class:`Gate` applies them to one connection:
the session asks it before serving each incoming frame. :class:`IdentityLimits` holds
what every connection of one identity shares (a connection count and a rate bucket).

Nothing here does I/O or sleeps: time is read from a clock the caller passes in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from grestws.rates import Rate, TokenBucket

if TYPE_CHECKING:
    from grestws.contract.methods import MethodSpec

__all__ = ("Gate", "IdentityLimits", "Limits")

Clock = Callable[[], float]


_STRIKES = Rate(1000, burst=1000)


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The limits a server holds every peer to. Every one can be turned off with ``None``.

    Attributes:
        max_in_flight: Incoming calls served at once per connection. Past it, a request is
            answered TOO_MANY_REQUESTS at once and a message is dropped (both counted);
            reading never stops, so pings, closes and the answers to the server's own
            requests keep flowing.
        rate: Incoming frames per connection (requests, messages, pings, malformed
            frames; not responses). Past it: TOO_MANY_REQUESTS with ``retryAfterMs`` for a
            request, a dropped message. A peer refused more than ``rate.capacity`` times
            faster than the rate refills is closed with 1008.
        identity_rate: The same, shared by every connection of one identity.
        deadline: Seconds a handler may run. Past it the handler is cancelled and the
            caller gets SERVER_ERROR "Deadline exceeded". ``@request(deadline=...)``
            overrides it per method.
        max_outgoing_buffer: Bytes written to a peer but not yet taken by its network. A
            peer whose buffer is over it when more is written is closed with 1013 (try
            again later). Replies are never dropped: they wait for flow control, and a
            peer that stops reading is closed.
        push_buffer: Over this many buffered bytes, fire-and-forget calls from the server
            (``conn.outgoing`` pushes and :func:`~grestws.broadcast`) are dropped for that
            peer (counted), never waited for.
        max_dropped_pushes: A peer that misses this many pushes in a row (it has not read
            enough to get under ``push_buffer`` in between) is closed with 1013: it has
            fallen too far behind to be of use and should reconnect and resync.
        max_connections: Open connections per App; past it the upgrade gets HTTP 503.
        max_connections_per_identity: Open connections of one identity per App; past it
            the handshake is refused with TOO_MANY_REQUESTS (``x``, close 4001).
        max_depth: Deepest nesting of arrays and objects in an incoming payload whose type
            lets nesting through (``Any``, a type that contains itself); deeper is a
            VALIDATION_ERROR (a dropped message) with the issue code ``too_deep``. Other
            types bound the nesting of what they decode by themselves.
        max_message_size: Largest incoming message in bytes; a larger one closes the
            connection with 1009 (message too big). Every transport applies it (the
            websockets server before reading the message whole).
        close_timeout: Seconds the closing handshake may take before the connection is
            dropped (a peer that does not read never completes it).
    """

    max_in_flight: int | None = 128
    rate: Rate | None = Rate(1000, burst=1000)
    identity_rate: Rate | None = Rate(2000, burst=4000)
    deadline: float | None = 30.0
    max_outgoing_buffer: int | None = 4 << 20
    push_buffer: int | None = 1 << 20
    max_dropped_pushes: int | None = 1000
    max_connections: int | None = 10_000
    max_connections_per_identity: int | None = 64
    max_depth: int = 64
    max_message_size: int | None = 1 << 20
    close_timeout: float = 2.0


class IdentityLimits:
    """What the connections of each identity share within one App: how many are open and
    one rate bucket. Made by the App; entries go when an identity's last connection closes."""

    __slots__ = ("_entries", "_limits")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._entries: dict[str, _IdentityEntry] = {}

    def acquire(self, identity_id: str, now: float) -> _IdentityEntry | None:
        """Count one more connection of ``identity_id``; None when it already has the most
        it may have (nothing is counted then)."""
        entry = self._entries.get(identity_id)
        if entry is None:
            rate = self._limits.identity_rate
            entry = self._entries[identity_id] = _IdentityEntry(
                None if rate is None else TokenBucket(rate, now)
            )
        cap = self._limits.max_connections_per_identity
        if cap is not None and entry.connections >= cap:
            if entry.connections == 0:
                del self._entries[identity_id]
            return None
        entry.connections += 1
        return entry

    def release(self, identity_id: str) -> None:
        """Count one connection of ``identity_id`` less."""
        entry = self._entries.get(identity_id)
        if entry is None:
            return
        entry.connections -= 1
        if entry.connections <= 0:
            del self._entries[identity_id]


class _IdentityEntry:
    __slots__ = ("bucket", "connections")

    def __init__(self, bucket: TokenBucket | None) -> None:
        self.bucket = bucket
        self.connections = 0


class Gate:
    """The limits of one connection: its rate buckets and the peer's strikes.

    Args:
        limits: The App's limits.
        clock: Monotonic seconds, the clock of the identity buckets too.
    """

    __slots__ = (
        "_clock",
        "_conn_bucket",
        "_identity_bucket",
        "_method_buckets",
        "_strikes",
        "default_deadline",
        "limits",
        "shares_identity",
    )

    def __init__(self, limits: Limits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        now = clock()
        self._conn_bucket = None if limits.rate is None else TokenBucket(limits.rate, now)
        self._strikes = TokenBucket(limits.rate or _STRIKES, now)
        self._identity_bucket: TokenBucket | None = None
        self._method_buckets: dict[str, TokenBucket] | None = None
        self.shares_identity = False
        """Whether this connection counts among its identity's connections."""
        deadline = limits.deadline
        self.default_deadline = None if deadline is None or math.isinf(deadline) else deadline
        """Seconds a call may run when its method sets no deadline (None: no deadline)."""

    def share_identity(self, entry: _IdentityEntry) -> None:
        """Charge this connection's frames to its identity's shared bucket as well."""
        self._identity_bucket = entry.bucket
        self.shares_identity = True

    def admit(self, spec: MethodSpec | None) -> float:
        """Charge one incoming frame (a call of ``spec``, or another frame when None).

        Returns:
            0.0 when admitted, else the seconds after which the peer may try again.
        """
        now = self._clock()
        wait = 0.0
        bucket = self._conn_bucket
        if bucket is not None:
            wait = bucket.take(now)
        if wait == 0.0 and self._identity_bucket is not None:
            wait = self._identity_bucket.take(now)
        if wait == 0.0 and spec is not None and spec.rate is not None:
            buckets = self._method_buckets
            if buckets is None:
                buckets = self._method_buckets = {}
            method_bucket = buckets.get(spec.path)
            if method_bucket is None:
                method_bucket = buckets[spec.path] = TokenBucket(spec.rate, now)
            wait = method_bucket.take(now)
        return wait

    def strike(self) -> bool:
        """Count one refused frame; True once the peer has been refused more than its burst
        faster than its rate refills (1000 a second without a rate), the sign of a peer
        that keeps going."""
        return self._strikes.take(self._clock()) > 0.0
