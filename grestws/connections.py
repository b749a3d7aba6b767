"""The connections an App serves: each one as its handlers see it, and the registry of the
live ones.

:class:`ServerConnection` is one client to its handler. :class:`Connections` is the App's
registry: every connection from its first frame until the calls it started have ended,
indexed by identity, with the graceful drain and the close-by-identity that servers and
the App's own shutdown use. Transports never reach into a connection's session: what they
need is a method here.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from grestws.context import Connection, ConnectRequest
from grestws.contract.contract import Caller, SocketSchema
from grestws.contract.methods import MethodSpec
from grestws.exceptions import ConnectionClosedError
from grestws.interceptors import Intercepted, Interceptor
from grestws.permissions import Identity
from grestws.protocol.frames import CLOSE_NORMAL, CLOSE_POLICY, CLOSE_SERVICE_RESTART, RESTART_REASON
from grestws.session import Session

__all__ = ("Connections", "ServerConnection")

S2C = TypeVar("S2C")

logger = logging.getLogger("grestws")

_ANSWER_WAIT = 1.0
"""Seconds the calls cancelled at shutdown get to send their answers before the close."""

_closing: set[asyncio.Task[None]] = set()
"""Closes started by :meth:`ServerConnection.close_soon`, kept until they end."""


class ServerConnection(Connection, Generic[S2C]):
    """One client as its handler sees it.

    Attributes:
        outgoing: The typed proxy to the client: ``await conn.outgoing.new_message(msg)``
            sends a fire-and-forget call, ``await conn.outgoing.are_you_there()`` a request.
        request: The upgrade request.
        handshake_headers: The headers the client sent in its ``h`` frame.
        typed_query: The query parsed into the schema's query type (``None`` without one);
            ``schema.query_of(conn)`` gives it typed.
        accepted: True once the handshake succeeded (``k`` sent).
        identity: Who the connection acts for, as the schema's middleware identified it
            at the handshake (``None``: no identity).
        handler: The object the App's handler factory made for it (``None`` until then).
    """

    __slots__ = (
        "_caller",
        "_closing",
        "_on_close",
        "_session",
        "accepted",
        "handler",
        "handshake_headers",
        "identity",
        "outgoing",
        "recovery_request",
        "request",
        "schema",
        "typed_query",
    )

    def __init__(
        self,
        request: ConnectRequest,
        session: Session,
        schema: SocketSchema[Any, S2C, Any],
        *,
        timeout: float | None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        super().__init__(uuid.uuid4().hex, request.path, request.remote_address, "server")
        self.request = request
        self.schema = schema
        self.handshake_headers: Mapping[str, str] = {}
        self.recovery_request: str | None = None
        """What the client asked of recovery in its handshake (see :mod:`grestws.recovery`)."""
        self._caller: Caller = session
        if interceptors:  # the calls it makes go through them
            self._caller = Intercepted(session, interceptors, self, self._identity)
        self.outgoing: S2C = session.outgoing.proxy(self._caller, timeout)
        self.typed_query: Any = None
        self.identity: Identity | None = None
        self.accepted = False
        self.handler: object = None
        self._closing = False
        self._session = session
        self._on_close: list[Callable[[int | None, str], object]] = []

    @property
    def query(self) -> Mapping[str, str]:
        """The query parameters of the upgrade request."""
        return self.request.query

    @property
    def is_open(self) -> bool:
        """True from the handshake's ``k`` until the connection closes or is told to."""
        # What the ``closed`` property says, without a second property call: fan-out asks it.
        return self.accepted and not (self._closing or self._session.closed)

    def _identity(self) -> Identity | None:
        return self.identity

    def with_timeout(self, timeout: float | None) -> S2C:
        """A proxy like ``outgoing`` whose requests time out after ``timeout`` s (None: never)."""
        proxy: S2C = self._session.outgoing.proxy(self._caller, timeout)
        return proxy

    def push(self, frame: bytes) -> bool:
        """Write an encoded fire-and-forget frame to the client now, never waiting: it is
        dropped (and counted) when the client has more than the limits' ``push_buffer``
        unread, and a client over ``max_outgoing_buffer`` is closed with 1013.

        Returns:
            Whether the frame was written.
        """
        return self.accepted and self._session.push(frame)

    async def send_frame(self, frame: bytes) -> bool:
        """Write an encoded frame to the client, waiting while its write buffer is full
        (flow control), where :meth:`push` would drop it.

        Returns:
            Whether it was written (False: the connection is closed or closing).
        """
        if not self.accepted or self.closed:
            return False
        try:
            await self._session.transport.send(frame)
        except ConnectionClosedError:
            return False
        return True

    def on_close(self, callback: Callable[[int | None, str], object]) -> None:
        """Call ``callback(code, reason)`` once the connection closed (at once if it has)."""
        if self._session.closed:
            callback(self._session.close_code, self._session.close_reason)
        else:
            self._on_close.append(callback)

    def serve(self, spec: MethodSpec, function: Callable[..., Awaitable[Any]]) -> None:
        """Serve the client's calls of ``spec`` with ``function(arg)`` (or ``function()``)
        from now on, in place of the handler's method."""
        self._session.bind_one(spec, function)

    @property
    def closed(self) -> bool:
        """True once the connection has closed, or :meth:`close` or :meth:`drop` was called."""
        return self._closing or self._session.closed

    def close_soon(self, code: int = CLOSE_POLICY, reason: str = "") -> None:
        """Start closing now, from synchronous code, without waiting: the same closing
        handshake as :meth:`close` (bounded by the close timeout), in a task of its own;
        :attr:`closed` is True at once. For a forced disconnect."""
        if self._closing:
            return
        self._closing = True
        task = asyncio.get_running_loop().create_task(self._session.transport.close(code, reason))
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    def drop(self, code: int = CLOSE_POLICY, reason: str = "") -> None:
        """End the connection now, without waiting: a close frame with ``code`` and
        ``reason`` if it can go out, nothing more read, the socket gone within the close
        timeout. For a forced disconnect; :meth:`close` waits for the closing handshake."""
        self._closing = True
        self._session.transport.drop(code, reason)

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close the connection; requests the client has pending fail on its side.

        Safe to call more than once and from any task.
        """
        self._closing = True
        await self._session.transport.close(code, reason)

    def drain(self) -> None:
        """Answer new requests UNAVAILABLE "Server is shutting down" from now on (a
        connection still in its handshake is refused); calls already running go on."""
        self._session.draining = True

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` was called."""
        return self._session.draining

    @property
    def in_flight(self) -> int:
        """How many of the client's calls are being served."""
        return self._session.in_flight

    @property
    def buffered(self) -> int:
        """Bytes written to the client and not yet taken by its network."""
        return self._session.transport.buffered

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until none of the client's calls is being served, at most ``timeout``
        seconds; True if none is. Cancel-safe."""
        return await self._session.wait_idle(timeout)

    def cancel_calls(self) -> list[asyncio.Task[None]]:
        """Cancel the client's calls still being served; its requests among them are
        answered SERVER_ERROR "Cancelled: the server is shutting down". Returns their
        tasks, which end soon after (await them before closing, so the answers go out)."""
        return self._session.cancel_tasks()

    def closed_now(self) -> None:
        """Run the ``on_close`` callbacks; called once, by the App, when the connection
        has closed."""
        for callback in self._on_close:
            try:
                callback(self._session.close_code, self._session.close_reason)
            except Exception:
                logger.exception("on_close callback failed")


class Connections:
    """The live connections of one App, from their first frame until the calls they
    started have ended.

    Each entry remembers its owner (the server that opened it), so that one server can
    shut down its own connections while another keeps serving the same App. Iterating
    gives every live connection, accepted or not, as a snapshot.
    """

    __slots__ = ("_by_identity", "_draining", "_live")

    def __init__(self) -> None:
        self._live: dict[ServerConnection[Any], object] = {}
        self._by_identity: dict[str, set[ServerConnection[Any]]] = {}
        self._draining = 0

    @property
    def draining(self) -> bool:
        """True while a drain of every connection (no owner) runs: connections that open
        meanwhile are refused ("Server is shutting down") at their handshake."""
        return self._draining > 0

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[ServerConnection[Any]]:
        return iter(list(self._live))

    def __contains__(self, conn: object) -> bool:
        return conn in self._live

    def add(self, conn: ServerConnection[Any], owner: object = None) -> None:
        """Register a connection that got its first frame (told to drain at once while
        every connection drains)."""
        self._live[conn] = owner
        if self._draining:
            conn.drain()

    def identified(self, conn: ServerConnection[Any]) -> None:
        """Index a registered connection by its identity (set at the handshake)."""
        if conn.identity is not None and conn in self._live:
            self._by_identity.setdefault(conn.identity.id, set()).add(conn)

    def discard(self, conn: ServerConnection[Any]) -> None:
        """Forget a connection whose calls have all ended."""
        self._live.pop(conn, None)
        if conn.identity is not None:
            peers = self._by_identity.get(conn.identity.id)
            if peers is not None:
                peers.discard(conn)
                if not peers:
                    del self._by_identity[conn.identity.id]

    def open(self, owner: object = None) -> set[ServerConnection[Any]]:
        """The open connections (handshake done, not closed), of ``owner`` when given, as
        a new set."""
        return {conn for conn, by in self._live.items() if conn.is_open and (owner is None or by is owner)}

    def of_identity(self, identity_id: str) -> list[ServerConnection[Any]]:
        """The live connections that act for ``identity_id``."""
        return list(self._by_identity.get(identity_id, ()))

    async def close_identity(self, identity_id: str, reason: str = "Access revoked") -> int:
        """Close every connection that acts for ``identity_id`` with 1008 and ``reason``.

        Returns:
            How many connections were closed.
        """
        targets = self.of_identity(identity_id)
        await asyncio.gather(*(conn.close(CLOSE_POLICY, reason) for conn in targets))
        return len(targets)

    def owned_by(self, owner: object) -> list[ServerConnection[Any]]:
        """The live connections of ``owner`` (every one when it is None)."""
        return [conn for conn, by in self._live.items() if owner is None or by is owner]

    async def drain(self, grace: float, owner: object = None, reason: str = RESTART_REASON) -> None:
        """Shut connections down gracefully: from now on new requests are answered
        UNAVAILABLE "Server is shutting down" (not run: a client may call again at once);
        calls in flight get ``grace`` seconds to finish and send their answers; what still
        runs is cancelled; every connection is closed with 1012 (service restart) and
        ``reason``, which tells a reconnecting client to come back at once, to this
        server once it is back or to another.

        Only the connections of ``owner``, when given; without one, connections that open
        while it runs are refused at their handshake too (see :attr:`draining`). Once it
        returns, new connections are served again. Cancelling it stops the wait, not the
        draining of the connections already told.
        """
        if owner is None:
            self._draining += 1
        try:
            targets = self.owned_by(owner)
            for conn in targets:
                conn.drain()
            if not targets:
                return
            await asyncio.gather(*(conn.wait_idle(grace) for conn in targets))
            cancelled = [task for conn in targets for task in conn.cancel_calls()]
            if cancelled:  # their answers go out before the close
                await asyncio.wait(cancelled, timeout=_ANSWER_WAIT)
            # Every request received is answered now; one still on its way is not run
            # (new requests are refused), which RESTART_REASON tells the clients.
            await asyncio.gather(*(conn.close(CLOSE_SERVICE_RESTART, reason) for conn in targets))
        finally:
            if owner is None:
                self._draining -= 1
