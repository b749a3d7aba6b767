"""A client's calls across connections: :class:`Link`.

A reconnecting client has one session per connection; its proxy calls through a
:class:`Link`, which hands each call to the session that is up, or makes it wait for the
next one (within the call's own timeout) while the client reconnects. A request whose
connection drops before its answer fails with
:class:`~grestws.exceptions.ConnectionLostError`, unless its method is idempotent: then it
is sent again on the next connection, within the same timeout. A request the server
refused while shutting down (UNAVAILABLE: it did not run) is sent again whatever its
method, and so is one the connection closed under before it could be sent, or that a
server closing after a graceful drain (1012 "Server restarting") never answered: such a
server answered every request it received before it closed.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from time import monotonic
from typing import Any

from grestws.contract.methods import MethodSpec
from grestws.exceptions import (
    ConnectionClosedError,
    ConnectionLostError,
    RequestTimeoutError,
    UnavailableError,
)
from grestws.protocol.frames import CLOSE_SERVICE_RESTART, RESTART_REASON
from grestws.reconnect import Backoff, Reconnect
from grestws.session import Session

__all__ = ("Link",)

_setting_up: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "grestws_setting_up", default=None
)


class Link:
    """The session calls go to, and the calls waiting for one.

    Args:
        wait: Whether a call made while no connection is up waits for one (within its
            timeout); False makes it fail at once with ConnectionClosedError.
        wait_timeout: How long a fire-and-forget call waits for a connection (None:
            as long as it takes).
        again: Whether a request is sent again on the next connection when the server
            did not run it, or when it is idempotent (False: the client does not
            reconnect, so there is none).
        policy: The pauses before a request answered UNAVAILABLE on a connection that
            stays up is sent again on it (full jitter, as between reconnects).

    Concurrency: calls from any number of tasks; :meth:`up`, :meth:`down` and
    :meth:`close` from the client's own task. Every wait is cancel-safe.
    """

    __slots__ = ("_changed", "_final", "_session", "again", "policy", "wait", "wait_timeout")

    def __init__(
        self,
        *,
        wait: bool = True,
        wait_timeout: float | None = 30.0,
        again: bool = True,
        policy: Reconnect | None = None,
    ) -> None:
        self.wait = wait
        self.again = again
        self.policy = Reconnect() if policy is None else policy
        self.wait_timeout = wait_timeout
        self._session: Session | None = None
        self._final: ConnectionClosedError | None = None
        self._changed = asyncio.Event()

    def up(self, session: Session) -> None:
        """``session`` is set up: calls go to it from now on, the waiting ones first."""
        self._session = session
        self._wake()

    def down(self) -> None:
        """The connection dropped; calls wait for the next one (or fail, without ``wait``)."""
        self._session = None
        self._wake()

    def close(self, error: ConnectionClosedError) -> None:
        """The client closed for good: every call, waiting or new, fails with ``error``."""
        self._session = None
        self._final = error
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @staticmethod
    def setting_up(session: Session) -> contextvars.Token[Session | None]:
        """Send the calls of the current context (a setup callback's) to ``session``,
        which is not up for other calls yet. Hand the token to :meth:`set_up`."""
        return _setting_up.set(session)

    @staticmethod
    def set_up(token: contextvars.Token[Session | None]) -> None:
        """End what :meth:`setting_up` started."""
        _setting_up.reset(token)

    async def _session_for(
        self, path: str, timeout: float | None, deadline: float, not_this: object
    ) -> Session:
        """The session to send on: the one up (other than ``not_this``), waiting for one
        until ``deadline`` (a ``monotonic()`` time) if allowed.

        Raises:
            ConnectionClosedError: closed for good, or down and not waiting.
            RequestTimeoutError: nothing came up before the deadline.
        """
        own = _setting_up.get()
        if own is not None:
            return own
        while True:
            session = self._session
            if session is not None and session is not not_this and not session.closed:
                return session
            if self._final is not None:
                raise self._final
            if not self.wait:
                raise ConnectionClosedError(None, "not connected")
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise RequestTimeoutError(path, math.inf if timeout is None else timeout)
            changed = self._changed
            try:
                async with asyncio.timeout(None if remaining == math.inf else remaining):
                    await changed.wait()
            except TimeoutError:
                pass

    async def request(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Any:
        """Send a request on the connection that is up, waiting for one if it must.

        Cancel-safe. Raises what :meth:`Session.request <grestws.session.Session.request>`
        raises, and ConnectionClosedError once the client is closed for good.
        """
        start = monotonic()
        session = self._session
        if session is not None and _setting_up.get() is None and not session.closed:
            try:
                return await session.request(spec, arg, timeout)
            except (ConnectionClosedError, UnavailableError) as exc:
                if not self._again(spec, exc):
                    raise
                return await self._retry(spec, arg, timeout, start, session, exc)
        return await self._retry(spec, arg, timeout, start, None, None)

    async def _retry(
        self,
        spec: MethodSpec,
        arg: Any,
        timeout: float | None,
        start: float,
        failed: Session | None,
        error: Exception | None,
    ) -> Any:
        deadline = math.inf if timeout is None else start + timeout
        backoff: Backoff | None = None
        while True:
            if isinstance(error, UnavailableError) and failed is not None and not failed.closed:
                # Answered UNAVAILABLE on a connection that stays up (a busy or paused
                # server, or one about to drain): send it again there after a pause,
                # or on the next connection if this one goes meanwhile.
                backoff = backoff or Backoff(self.policy)
                delay = backoff.next_delay()
                if monotonic() + delay >= deadline:
                    raise error
                await self._pause(delay)
                failed = None
            session = await self._session_for(spec.path, timeout, deadline, failed)
            remaining = None if timeout is None else max(0.0, deadline - monotonic())
            try:
                return await session.request(spec, arg, remaining)
            except RequestTimeoutError:
                raise RequestTimeoutError(spec.path, math.inf if timeout is None else timeout) from None
            except (ConnectionClosedError, UnavailableError) as exc:
                if not self._again(spec, exc) or _setting_up.get() is not None:
                    raise
                failed, error = session, exc

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds (the policy's clock), or until the connection changes."""
        changed = asyncio.ensure_future(self._changed.wait())
        pause = asyncio.ensure_future(self.policy.sleep(delay))
        try:
            await asyncio.wait({changed, pause}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            pause.cancel()

    def _again(self, spec: MethodSpec, error: Exception) -> bool:
        """Whether a request that failed with ``error`` goes out again on the next
        connection: not run by the server (UNAVAILABLE, or never sent), or idempotent."""
        if self._final is not None or not self.wait or not self.again:
            return False
        if isinstance(error, ConnectionLostError):
            # A graceful drain answered every request it received: this one was not run.
            drained = error.code == CLOSE_SERVICE_RESTART and error.reason == RESTART_REASON
            return spec.idempotent or drained
        return True

    async def notify(self, spec: MethodSpec, arg: Any) -> None:
        """Send a fire-and-forget call on the connection that is up, waiting for one (at
        most ``wait_timeout``) if it must. One sent before a drop is not sent again.

        Raises:
            ConnectionClosedError: closed for good, not connected (and not waiting), or
                no connection came up in time.
        """
        session = self._session
        if session is not None and _setting_up.get() is None and not session.closed:
            try:
                await session.notify(spec, arg)
                return
            except ConnectionClosedError:
                if self._final is not None or not self.wait or not self.again:
                    raise
        limit = self.wait_timeout
        deadline = math.inf if limit is None else monotonic() + limit
        while True:
            try:
                session = await self._session_for(spec.path, limit, deadline, None)
            except RequestTimeoutError:
                raise ConnectionClosedError(None, f"not connected within {limit:g} s") from None
            try:
                await session.notify(spec, arg)
                return
            except ConnectionClosedError:
                if self._final is not None or not self.wait or _setting_up.get() is not None:
                    raise
