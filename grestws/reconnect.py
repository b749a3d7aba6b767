"""When and how a client comes back after its connection drops: :class:`Reconnect`.

A :class:`~grestws.client.Client` reconnects by itself unless told not to. After a drop
it waits a pause drawn with full jitter (a random time between 0 and a cap that doubles
from ``initial_delay`` to ``max_delay``), makes a fresh handshake (fresh headers: a token
provider is called again) and runs the setup callbacks again. A server that restarts
gracefully closes with 1012: the client comes back at once, trying the next URL first
(or within ``restart_spread`` seconds, at a random time, so that the clients of a server
that restarts do not all open their connections in the same instant).

What is final, with no retry:

- a handshake refused with NOT_AUTHORIZED, FORBIDDEN or VALIDATION_ERROR (a token that
  expired, a query that does not fit): trying again cannot help;
- a close the server meant: 1000 (it said goodbye), 1008 (access revoked, or a peer
  that broke the limits), 1003 and 1007 (what the client sent makes no sense to it);
- ``max_attempts`` attempts in a row that failed.

Both rules can be replaced (``Reconnect(retry=..., retry_close=...)``).
"""

from __future__ import annotations

import asyncio
import enum
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec

from grestws.exceptions import ForbiddenError, NotAuthorizedError, ValidationError
from grestws.protocol.frames import CLOSE_NORMAL, CLOSE_POLICY, CLOSE_SERVICE_RESTART

__all__ = (
    "Backoff",
    "CloseCause",
    "Drop",
    "LinkInfo",
    "Pauses",
    "Reconnect",
    "retry_after_close",
    "retry_after_error",
)

_FINAL_CLOSES = frozenset({CLOSE_NORMAL, 1003, 1007, CLOSE_POLICY, 4000, 4001})


def retry_after_error(error: BaseException) -> bool:
    """The default rule for a failed attempt: retry, unless the server refused the
    handshake with NOT_AUTHORIZED, FORBIDDEN or VALIDATION_ERROR."""
    return not isinstance(error, (NotAuthorizedError, ForbiddenError, ValidationError))


def retry_after_close(code: int | None) -> bool:
    """The default rule for a drop: reconnect after anything but 1000, 1003, 1007, 1008,
    4000 and 4001 (closes the server meant)."""
    return code not in _FINAL_CLOSES


@dataclass(frozen=True, kw_only=True)
class Reconnect:
    """How a client reconnects: ``Client(url, schema, reconnect=Reconnect(max_attempts=10))``.

    Args:
        initial_delay: The cap of the first pause, in seconds.
        max_delay: The largest cap; the cap doubles (``multiplier``) up to it.
        multiplier: How the cap grows from one attempt to the next.
        max_attempts: Attempts in a row before the client gives up and closes for good
            (None: never gives up).
        restart_spread: After a 1012 (the server restarting), the first attempt waits a
            random time below this many seconds instead of none: a server's thousands
            of clients then come back to the other servers spread over that time, not
            in one burst of handshakes. 0 (the default): at once.
        retry: Whether an attempt that failed with this error is worth another one.
        retry_close: Whether a connection that closed with this code (None: no close
            frame) is worth reconnecting.
        sleep: How to wait (``asyncio.sleep``); a test passes a fake clock's.
        random: A number in [0, 1) for the jitter (``random.random``).
    """

    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = None
    restart_spread: float = 0.0
    retry: Callable[[BaseException], bool] = retry_after_error
    retry_close: Callable[[int | None], bool] = retry_after_close
    sleep: Callable[[float], Awaitable[object]] = field(default=asyncio.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ValueError("need 0 <= initial_delay <= max_delay")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.restart_spread < math.inf:
            raise ValueError("restart_spread must be a finite number of seconds, at least 0")

    def first_pause(self, code: int | None) -> float | None:
        """The pause before the first attempt after a drop with ``code``: for a 1012, a
        random time below ``restart_spread`` (0: none); for any other, None (a pause of
        the backoff)."""
        if code != CLOSE_SERVICE_RESTART:
            return None
        return self.random() * self.restart_spread if self.restart_spread else 0.0


class Backoff:
    """The pauses between attempts: full jitter over a cap that grows exponentially.

    The n-th pause (from 0) is ``random() * min(max_delay, initial_delay * multiplier**n)``.
    """

    __slots__ = ("_attempt", "_policy")

    def __init__(self, policy: Reconnect) -> None:
        self._policy = policy
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many pauses were drawn since the last reset."""
        return self._attempt

    def cap(self) -> float:
        """The cap of the next pause."""
        policy = self._policy
        try:
            grown = policy.initial_delay * policy.multiplier ** min(self._attempt, 1024)
        except OverflowError:
            return policy.max_delay
        return min(policy.max_delay, grown)

    def next_delay(self) -> float:
        """Draw the next pause, in seconds."""
        delay = self._policy.random() * self.cap()
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Start over from ``initial_delay`` (after a connection that worked)."""
        self._attempt = 0


class Pauses:
    """The pauses of a reconnect, and :meth:`force`, which ends the pause under way or
    skips the next one (``force_reconnect()``).

    Concurrency: one reconnect pauses at a time; :meth:`force` from any task.
    """

    __slots__ = ("_wakeup", "forced")

    def __init__(self) -> None:
        self._wakeup = asyncio.Event()
        self.forced = False
        """Whether a reconnect was forced since :meth:`take` last said."""

    def force(self) -> None:
        """Reconnect now: end the pause under way, or skip the next one."""
        self.forced = True
        self._wakeup.set()

    def take(self) -> bool:
        """Whether a reconnect was forced, forgetting it."""
        forced, self.forced = self.forced, False
        return forced

    async def pause(self, policy: Reconnect, delay: float) -> None:
        """Sleep ``delay`` seconds with the policy's clock, or until :meth:`force`."""
        self._wakeup.clear()
        sleeping = asyncio.ensure_future(policy.sleep(delay))
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait((sleeping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            woken.cancel()


class CloseCause(enum.Enum):
    """Why a client closed for good."""

    MANUAL = "manual"
    """``close()`` or ``disconnect()`` was called."""
    DROPPED = "dropped"
    """The connection dropped and reconnecting is off, or the close was one the server
    meant (see :func:`retry_after_close`)."""
    RETRIES_EXHAUSTED = "retries exhausted"
    """``max_attempts`` attempts in a row failed."""
    UNRECOVERABLE = "unrecoverable"
    """An attempt failed with an error not worth retrying (a token refused)."""


class Drop(msgspec.Struct, frozen=True):
    """A connection that dropped, as :meth:`Client.on_drop <grestws.client.Client.on_drop>`
    reports it.

    Attributes:
        code: The close code (1006: lost without a close frame; None: never opened).
        reason: The close reason, or what went wrong.
        reconnecting: Whether the client will try to connect again.
    """

    code: int | None
    reason: str
    reconnecting: bool

    @property
    def restart(self) -> bool:
        """Whether the server said it restarts (1012): the client comes back at once."""
        return self.code == CLOSE_SERVICE_RESTART


class LinkInfo(msgspec.Struct, frozen=True):
    """What a setup callback is told about the connection it sets up.

    Attributes:
        url: The URL connected to.
        reconnect: False on the first connection, True on every later one.
        attempts: How many attempts this connection took (1: the first worked).
        recovered: None when the client did not ask to recover what it missed; True when
            the server sent everything the client missed while away; False when it could
            not (past its window): the application should fetch its state again.
    """

    url: str
    reconnect: bool
    attempts: int = 1
    recovered: bool | None = None
