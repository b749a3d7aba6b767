"""What peers did wrong and what the limits did about it: counted, logged without flooding
the log, and handed to the application's ``on_error`` hook.

Every dropped frame, refused call, limit hit and failed handler is an :class:`Incident` of
one :class:`IncidentKind`. :class:`Incidents` counts them by kind, logs them through a
:class:`LogThrottle` (per kind: the first few in every interval, then one line with how
many more there were), and calls the hook. A peer can send garbage as fast as it likes; the
log grows by a bounded number of lines per interval, whatever it sends.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grestws.context import Connection
    from grestws.exceptions import GrestwsError

__all__ = ("Incident", "IncidentHook", "IncidentKind", "Incidents", "LogThrottle")

logger = logging.getLogger("grestws")


class IncidentKind(enum.Enum):
    """What happened. The value is the stable name used in counts and logs."""

    MALFORMED_FRAME = "malformed_frame"
    """A frame that is not PROTOCOL.md (dropped)."""
    INVALID_PAYLOAD = "invalid_payload"
    """A payload that failed validation: a request answered VALIDATION_ERROR, a message dropped."""
    UNKNOWN_ROUTE = "unknown_route"
    """A call to a method nobody serves: ROUTE_NOT_FOUND, or a dropped message."""
    NOT_PERMITTED = "not_permitted"
    """A call its identity may not make: NOT_AUTHORIZED / FORBIDDEN, or a dropped message."""
    RATE_LIMITED = "rate_limited"
    """A frame over a rate: TOO_MANY_REQUESTS, or a dropped message."""
    IN_FLIGHT_LIMITED = "in_flight_limited"
    """A call over the in-flight cap: TOO_MANY_REQUESTS, or a dropped message."""
    DEADLINE_EXCEEDED = "deadline_exceeded"
    """A handler cancelled at its deadline."""
    HANDLER_FAILED = "handler_failed"
    """A handler raised an undeclared error: SERVER_ERROR with a ref."""
    PUSH_DROPPED = "push_dropped"
    """A push not sent because the peer's outgoing buffer was over the push bound."""
    SLOW_CONSUMER = "slow_consumer"
    """A peer that did not read closed with 1013."""
    POLICY_CLOSE = "policy_close"
    """A peer that kept going past its rate closed with 1008."""
    CONNECTION_REFUSED = "connection_refused"
    """A connection refused by a connection cap or an origin check."""
    HANDSHAKE_REFUSED = "handshake_refused"
    """A handshake answered ``x`` (the middleware, the connect permission or the handler
    factory refused it), or a connection closed 4000 for an invalid query."""
    DEAD_PEER = "dead_peer"
    """A peer silent for ping interval + ping timeout, dropped."""


class Incident:
    """One thing that went wrong, as the ``on_error`` hook sees it.

    Attributes:
        kind: What happened.
        message: A readable one-line description (no payload beyond a short excerpt).
        connection: The connection it happened on, when there is one.
        path: The called method's wire path, when there is one; for a refused
            connection, the URL path it asked for.
        error: The grestws error that stands for it (what the peer was answered, if it
            was answered), when there is one.
        answered: True when the peer was told (a request answered with ``error``); False
            when nobody was (a dropped message, a failed fire-and-forget handler).
    """

    __slots__ = ("answered", "connection", "error", "kind", "message", "path")

    def __init__(
        self,
        kind: IncidentKind,
        message: str,
        *,
        connection: Connection | None = None,
        path: str = "",
        error: GrestwsError | None = None,
        answered: bool = False,
    ) -> None:
        self.answered = answered
        self.kind = kind
        self.message = message
        self.connection = connection
        self.path = path
        self.error = error

    def __repr__(self) -> str:
        return f"<Incident {self.kind.value}: {self.message}>"


IncidentHook = Callable[[Incident], object]


class LogThrottle:
    """Logs at most ``burst`` lines of each kind per ``interval`` seconds; the rest are
    counted, and one summary line per kind says how many were left out.

    Args:
        interval: Seconds of one window.
        burst: Lines of one kind logged in full per window.
        clock: Monotonic seconds.
    """

    __slots__ = ("_burst", "_clock", "_interval", "_suppressed", "_windows")

    def __init__(self, interval: float = 10.0, burst: int = 5, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._burst = burst
        self._clock = clock
        self._windows: dict[Any, tuple[float, int]] = {}
        self._suppressed: dict[Any, int] = {}

    def allow(self, kind: Any) -> bool:
        """Whether a line of ``kind`` may be logged now; a False is counted for the summary."""
        now = self._clock()
        start, count = self._windows.get(kind, (now, 0))
        if now - start >= self._interval:
            self.flush(kind)
            start, count = now, 0
        self._windows[kind] = (start, count + 1)
        if count < self._burst:
            return True
        if kind not in self._suppressed:
            self._suppressed[kind] = 0
            self._schedule_flush(kind, start + self._interval - now)
        self._suppressed[kind] += 1
        return False

    def reset(self) -> None:
        """Forget every window and count, as in a new process."""
        self._windows.clear()
        self._suppressed.clear()

    def flush(self, kind: Any) -> None:
        """Log the summary of ``kind``'s left-out lines, if any."""
        left_out = self._suppressed.pop(kind, 0)
        if left_out:
            name = kind.value if isinstance(kind, enum.Enum) else kind
            logger.warning("%d more %s warnings in the last %g s", left_out, name, self._interval)

    def _schedule_flush(self, kind: Any, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # flushed by the next line of this kind after the window
        loop.call_later(max(delay, 0.0), self.flush, kind)


class Incidents:
    """The incidents of one App (or one client): counts by kind, the throttled log and the hook.

    Args:
        hook: Called with every incident; exceptions it raises are logged, never raised.
        throttle: Where log lines are rationed; one per process by default.
    """

    __slots__ = ("_counts", "_throttle", "hook", "listeners")

    def __init__(self, hook: IncidentHook | None = None, throttle: LogThrottle | None = None) -> None:
        self.hook = hook
        self.listeners: list[IncidentHook] = []
        """Called with every incident after the hook, in order: where metrics and other
        observers listen (append to add one)."""
        self._throttle = throttle or PEER_LOG
        self._counts: dict[IncidentKind, int] = dict.fromkeys(IncidentKind, 0)

    @property
    def counts(self) -> Mapping[IncidentKind, int]:
        """How many incidents of each kind there were (a live, read-only view)."""
        return self._counts

    def report(
        self, incident: Incident, level: int = logging.WARNING, exc_info: BaseException | None = None
    ) -> None:
        """Count ``incident``, log it (throttled) at ``level`` with ``exc_info``'s traceback,
        and call the hook and the listeners."""
        self._counts[incident.kind] += 1
        if self._throttle.allow(incident.kind):
            where = f"{incident.connection.id}: " if incident.connection is not None else ""
            logger.log(level, "%s%s", where, incident.message, exc_info=exc_info)
        hook = self.hook
        if hook is not None:
            self._call(hook, incident, "on_error")
        for listener in self.listeners:
            self._call(listener, incident, "incident_listener")

    def _call(self, hook: IncidentHook, incident: Incident, what: str) -> None:
        try:
            hook(incident)
        except Exception:
            if self._throttle.allow(what):
                logger.exception("the %s hook failed", what)


PEER_LOG = LogThrottle()
"""The process's ration of log lines caused by peers."""
