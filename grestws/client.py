"""The typed client: :func:`connect` and :class:`Client`."""

from __future__ import annotations

import asyncio
import enum
import inspect
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, Self, TypedDict, TypeVar, overload

from typing_extensions import Unpack

from grestws._util import Opening
from grestws.context import Connection
from grestws.contract.contract import Caller, SocketSchema
from grestws.contract.methods import MethodSpec
from grestws.dialing import Headers, dial, handshake, schema_url, with_query
from grestws.exceptions import (
    ConnectionClosedError,
    GrestwsError,
    InvalidStateError,
)
from grestws.handshake import FirstFrame
from grestws.incidents import PEER_LOG, Incident, IncidentKind, Incidents
from grestws.interceptors import Intercepted, Interceptor
from grestws.link import Link
from grestws.protocol.frames import CLOSE_NORMAL
from grestws.protocol.positions import RECOVERY_HEADER, Resumption
from grestws.reconnect import Backoff, CloseCause, Drop, LinkInfo, Pauses, Reconnect
from grestws.session import Session
from grestws.transports import Dialer, Transport
from grestws.transports.websockets import WebsocketsDialer

__all__ = (
    "Client",
    "ClientOptions",
    "ClientState",
    "Headers",
    "Registrar0",
    "Registrar1",
    "Setup",
    "connect",
)

C2S = TypeVar("C2S")
S2C = TypeVar("S2C")
Q = TypeVar("Q")
A = TypeVar("A")
R = TypeVar("R")

logger = logging.getLogger("grestws")


class Registrar0(Protocol[R]):
    """What :meth:`Client.on` returns for a method without an argument."""

    def __call__(self, handler: Callable[[], Awaitable[R]], /) -> Callable[[], Awaitable[R]]: ...


class Registrar1(Protocol[A, R]):
    """What :meth:`Client.on` returns for a method with an argument of type ``A``."""

    def __call__(self, handler: Callable[[A], Awaitable[R]], /) -> Callable[[A], Awaitable[R]]: ...


class ClientState(enum.Enum):
    """The lifecycle of a :class:`Client`: NEW -> CONNECTING -> OPEN -> CLOSING -> CLOSED,
    and OPEN -> RECONNECTING -> OPEN each time the connection drops and comes back."""

    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS: dict[ClientState, set[ClientState]] = {
    ClientState.NEW: {ClientState.CONNECTING},
    ClientState.CONNECTING: {ClientState.OPEN, ClientState.CLOSED},
    ClientState.OPEN: {ClientState.CLOSING, ClientState.CLOSED, ClientState.RECONNECTING},
    ClientState.RECONNECTING: {ClientState.OPEN, ClientState.CLOSING, ClientState.CLOSED},
    ClientState.CLOSING: {ClientState.CLOSED, ClientState.OPEN},  # OPEN: a cancelled disconnect
    ClientState.CLOSED: set(),
}

Setup = Callable[[LinkInfo], Awaitable[object]]
"""A setup callback: run on every connection before calls go out on it."""


class Client(Connection, Generic[C2S, S2C]):
    """A typed connection to one schema on a server, which comes back when it drops.

    Args:
        url: The server's base URL (``ws://127.0.0.1:8765``), or several, tried in turn
            (failover). The schema's path is appended to each URL's path, unless that
            path already ends with it: the full URL that ``grestws serve`` logs
            (``ws://127.0.0.1:8765/ws/chat``) works as well.
        schema: The schema to talk to.
        query: The query to connect with, of the schema's query type; checked before the
            socket opens (a ValidationError raised locally) and sent as URL parameters.
        handlers: An object implementing the ``server_to_client`` Protocol, if the client
            serves all of it; use :meth:`on` to serve a subset.
        timeout: Default seconds to wait for a response (None: wait forever).
        handshake_timeout: Seconds to wait for the connection to open and for ``k``/``x``.
        headers: Handshake headers sent in the ``h`` frame, or a function (sync or async)
            that gives them, called again for every connection: a token provider.
        upgrade_headers: HTTP headers of the upgrade request itself (a ``Cookie``, say);
            browsers cannot set these, so servers should not require them.
        max_message_size: Largest incoming frame in bytes.
        ping_interval, ping_timeout: grestws's liveness watch, as on the server: a server
            silent for ``ping_interval`` is pinged, and one that then sends nothing for
            ``ping_timeout`` is taken for gone (a drop, then a reconnect).
        compression: Offer permessage-deflate.
        dialer: How to open the transport (:class:`~grestws.transports.Dialer`); the
            default opens a socket with websockets, with the four options above. With
            another dialer they are the dialer's to set: giving any of them a value other
            than its default raises ValueError. :func:`grestws.testkit.call_on` passes
            one that connects to an App in the same process.
        reconnect: How to reconnect after a drop (:class:`~grestws.reconnect.Reconnect`);
            True (the default) for the default policy, False never to reconnect.
        wait_for_connection: Whether a call made while the client reconnects waits for the
            connection (within its timeout; a fire-and-forget call within ``timeout``) or
            fails at once with ConnectionClosedError.
        setup: A coroutine function run on every connection, the first and each reconnect,
            before other calls go out on it: what joins rooms, watches topics and fetches
            state. It gets a :class:`~grestws.reconnect.LinkInfo`; its own calls go out at
            once. When it raises, the connection counts as a failed attempt.
        recover: Ask the server to number its pushes and, after a reconnect, to send the
            ones missed meanwhile (in order, each once): for servers with
            ``App(recovery=...)``; others ignore it (it is one handshake header).
            ``LinkInfo.recovered`` tells the setup callbacks whether it worked. See
            ``docs/reconnect.md``.
        interceptors: Run around every call the client makes and every call of the
            server's it serves (:mod:`grestws.interceptors`), the first outermost. A
            call sent again after a reconnect is one call to them.

    Concurrency: any number of tasks may call through :attr:`outgoing` at once; responses
    are matched by id. Handlers for the server's calls run concurrently, each in its own
    task. Callbacks run in the client's task and must not block.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        schema: SocketSchema[C2S, S2C, Q],
        *,
        handlers: S2C | None = None,
        query: Q | None = None,
        timeout: float | None = 30.0,
        handshake_timeout: float = 5.0,
        headers: Headers | None = None,
        upgrade_headers: Mapping[str, str] | None = None,
        max_message_size: int = 1 << 20,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 10.0,
        compression: bool = False,
        dialer: Dialer | None = None,
        reconnect: Reconnect | bool = True,
        wait_for_connection: bool = True,
        setup: Setup | None = None,
        recover: bool = False,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        super().__init__(uuid.uuid4().hex, schema.path, None, "client")
        self.schema: SocketSchema[C2S, S2C, Any] = schema
        given = (url,) if isinstance(url, str) else tuple(url)
        if not given:
            raise ValueError("no URL to connect to")
        self.urls = tuple(schema_url(one, schema.path) for one in given)
        self._url_index = 0
        self.query: Any = query
        self.timeout = timeout
        self.handshake_timeout = handshake_timeout
        self.headers: Headers = dict(headers or {}) if not callable(headers) else headers
        self.upgrade_headers = dict(upgrade_headers or {})
        if dialer is None:
            dialer = WebsocketsDialer(
                max_message_size=max_message_size,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                compression=compression,
            )
        else:
            chosen = (max_message_size, ping_interval, ping_timeout, compression)
            ignored = [
                name for name, value in zip(_DIALED, chosen, strict=True) if value != _dialed_default(name)
            ]
            if ignored:
                raise ValueError(
                    f"{', '.join(ignored)} would be ignored with the dialer {type(dialer).__name__}: "
                    "the dialer opens the transport, so set them on it"
                )
        self._dialer = dialer
        self.reconnect: Reconnect | None = (
            (Reconnect() if reconnect else None) if isinstance(reconnect, bool) else reconnect
        )
        self._state = ClientState.NEW
        self._handler_object = handlers
        self._functions: dict[str, tuple[MethodSpec, Callable[..., Awaitable[Any]]]] = {}
        self._setups: list[Setup] = [] if setup is None else [setup]
        self._on_close: list[Callable[[int | None, str], object]] = []
        self._on_drop: list[Callable[[Drop], object]] = []
        self._on_error: list[Callable[[GrestwsError], object]] = []
        self._link = Link(
            wait=wait_for_connection,
            wait_timeout=timeout,
            again=self.reconnect is not None,
            policy=self.reconnect,
        )
        self.interceptors = tuple(interceptors)
        self._caller: Caller = self._link
        if self.interceptors:
            self._caller = Intercepted(self._link, self.interceptors, self)
        self._session: Session | None = None
        self._outgoing: C2S | None = None
        self._reader: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._pauses = Pauses()
        self._resumption = Resumption() if recover else None
        self.close_cause: CloseCause | None = None
        """Why the client closed for good (None until it has)."""
        self.close_error: BaseException | None = None
        """The error that ended the last attempt, when the client gave up on one."""

    def __repr__(self) -> str:
        return f"<Client {self.url} {self._state.value}>"

    @property
    def url(self) -> str:
        """The URL of the current connection (or of the next attempt)."""
        return self.urls[self._url_index]

    # -- state ------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """Where the client is in its lifecycle."""
        return self._state

    def _move(self, state: ClientState) -> None:
        if state not in _TRANSITIONS[self._state]:
            raise InvalidStateError(f"cannot go from {self._state.value} to {state.value}")
        self._state = state

    @property
    def outgoing(self) -> C2S:
        """The typed proxy to the server: ``await client.outgoing.send_message(req)``.

        It outlives reconnects: a call made while the client reconnects waits for the next
        connection (see ``wait_for_connection``).

        Raises:
            InvalidStateError: the client has not connected yet.
        """
        if self._outgoing is None:
            raise InvalidStateError("connect() first")
        return self._outgoing

    def with_timeout(self, timeout: float | None) -> C2S:
        """A proxy like :attr:`outgoing` whose requests time out after ``timeout`` s."""
        if self._outgoing is None:
            raise InvalidStateError("connect() first")
        proxy: C2S = self.schema.contract.client_to_server.proxy(self._caller, timeout)
        return proxy

    # -- handlers and callbacks -------------------------------------------------------

    @overload
    def on(self, method: Callable[[S2C], Awaitable[R]], /) -> Registrar0[R]: ...
    @overload
    def on(self, method: Callable[[S2C, A], Awaitable[R]], /) -> Registrar1[A, R]: ...
    def on(self, method: Callable[..., Awaitable[Any]], /) -> Any:
        """Serve one of the server's calls with a function; usable as a decorator::

            @client.on(ChatClient.new_message)
            async def show(msg: Message) -> None: ...

            client.on(ChatClient.are_you_there)(answer)

        The function takes the method's argument (if it has one) and returns its success
        type; both are checked statically against the stub. May be used before or after
        connecting; it serves every later connection too. A call that arrives while no
        function serves it gets ROUTE_NOT_FOUND (a request) or is dropped and reported (a
        message), and a WARNING "no handler for <path>" is logged (a few per interval at
        most). The function is handed back.

        Raises:
            ContractError: ``method`` is not a method of the schema's ``server_to_client``.
        """
        spec = self.schema.contract.server_to_client.spec_for(method)

        def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            self._functions[spec.path] = (spec, handler)
            if self._session is not None:
                self._session.bind_one(spec, handler)
            return handler

        return register

    def on_setup(self, callback: Setup) -> Setup:
        """Run ``await callback(info)`` on every connection from now on, after those
        registered before, before other calls go out on it; usable as a decorator. See
        ``setup`` in :class:`Client`. The callback is handed back."""
        self._setups.append(callback)
        return callback

    def on_close(self, callback: Callable[[int | None, str], object]) -> None:
        """Call ``callback(code, reason)`` when the client closes for good, whoever closed
        it (at once if it has closed already); :attr:`close_cause` says why. A drop
        followed by a reconnect is not a close: see :meth:`on_drop`."""
        if self._state is ClientState.CLOSED and self._session is not None:
            callback(self._session.close_code, self._session.close_reason)
        else:
            self._on_close.append(callback)

    def on_drop(self, callback: Callable[[Drop], object]) -> None:
        """Call ``callback(drop)`` every time the connection drops, with its close code
        and reason and whether the client reconnects (:class:`~grestws.reconnect.Drop`)."""
        self._on_drop.append(callback)

    def on_error(self, callback: Callable[[GrestwsError], object]) -> None:
        """Call ``callback(error)`` for problems no caller can be told of: a malformed
        frame, an invalid fire-and-forget payload, a failing handler."""
        self._on_error.append(callback)

    def _report(self, incident: Incident) -> None:
        if incident.kind is IncidentKind.UNKNOWN_ROUTE:
            self._warn_unhandled(incident.path)
        error = incident.error
        if error is None or incident.answered:
            return
        _run_callbacks(self._on_error, "on_error", error)

    def _warn_unhandled(self, path: str) -> None:
        """Say, rationed, that the server called ``path`` and nothing here serves it."""
        if not PEER_LOG.allow("no_handler"):
            return
        half = self.schema.contract.server_to_client
        if path in half.by_path:
            logger.warning("no handler for %s: register one with client.on(...) or handlers=", path)
        else:
            logger.warning("no handler for %s: the contract does not declare it", path)

    # -- connecting -------------------------------------------------------------------

    async def connect(self, *, retry: bool = False) -> Self:
        """Open the socket, run the handshake and the setup callbacks; from then on the
        client reconnects by itself when the connection drops (unless ``reconnect`` is
        False). With several URLs, each is tried once, in turn, until one works.

        Args:
            retry: Keep trying as a reconnect does, with the ``reconnect`` policy's pauses
                and rules, until a connection is set up (a service that starts before its
                server); what the policy gives up on is raised.

        Cancel-safe: cancelling closes whatever was opened.

        Raises:
            ValidationError: the query does not fit the schema's query type (checked before
                anything is sent), or the server closed with 4000 (invalid query).
            ApiError: the server refused the handshake (``x``), as the error's own class.
            HandshakeTimeoutError: no ``k``/``x`` within ``handshake_timeout``.
            ConnectError: the socket could not be opened (refused, HTTP 404, ...).
            ConnectionClosedError: the server closed the socket during the handshake.
            InvalidStateError: the client was connected before.
            Exception: what a setup callback raised.
        """
        if self.schema.query is not None:
            self.schema.encode_query(self.query)  # a ValidationError before anything opens
        self._move(ClientState.CONNECTING)
        self._outgoing = self.schema.contract.client_to_server.proxy(self._caller, self.timeout)
        policy = self.reconnect or Reconnect()
        backoff = Backoff(policy)
        try:
            for attempt in itertools.count(1):
                try:
                    await self._attempt(reconnect=False, attempts=attempt)
                    break
                except Exception as exc:
                    if not policy.retry(exc):
                        raise
                    tried_all = attempt % len(self.urls) == 0
                    if tried_all and not retry:
                        raise
                    if retry and policy.max_attempts is not None and attempt >= policy.max_attempts:
                        raise
                    self._url_index = (self._url_index + 1) % len(self.urls)
                    if tried_all:
                        await policy.sleep(backoff.next_delay())
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else None
            exhausted = retry and error is not None and policy.retry(error)
            self._finish(CloseCause.RETRIES_EXHAUSTED if exhausted else CloseCause.UNRECOVERABLE, error)
            raise
        self._move(ClientState.OPEN)
        self._watch()
        return self

    async def _attempt(self, *, reconnect: bool, attempts: int) -> None:
        """Connect once to the current URL: dial, handshake, run the setup callbacks, and
        send the waiting calls to the new session.

        Raises:
            What :meth:`connect` raises (closing what it opened first).
        """
        url = self.url
        if self.schema.query is not None:
            url = with_query(url, self.schema.encode_query(self.query))
        dialed = await dial(self._dialer, url, self.upgrade_headers, self.handshake_timeout, self.url)
        self.remote_address = dialed.remote_address
        transport = dialed.transport
        resumption = self._resumption
        extra = {} if resumption is None else {RECOVERY_HEADER: resumption.offer()}
        acceptance = await handshake(
            transport, self.schema, self.url, self.headers, extra, self.handshake_timeout
        )
        recovered = None if resumption is None else resumption.accepted(acceptance.frame.data)
        session = self._wire(transport, acceptance)
        try:
            if self._setups:
                await self._set_up(session, LinkInfo(self.url, reconnect, attempts, recovered))
        except BaseException:
            await transport.close(CLOSE_NORMAL, "")
            raise
        if session.closed:
            raise ConnectionClosedError(session.close_code, session.close_reason)
        self._link.up(session)

    async def _set_up(self, session: Session, info: LinkInfo) -> None:
        token = Link.setting_up(session)
        try:
            for setup in list(self._setups):
                await setup(info)
        finally:
            Link.set_up(token)

    def _wire(self, transport: Transport, acceptance: FirstFrame) -> Session:
        """Make the session, bind the handlers, hand it the frames and start reading."""
        session = Session(
            transport,
            self,
            incoming=self.schema.contract.server_to_client,
            outgoing=self.schema.contract.client_to_server,
            incidents=Incidents(self._report),
            interceptors=self.interceptors,
        )
        if self._handler_object is not None:
            session.bind(self._handler_object)
        for spec, handler in self._functions.values():
            session.bind_one(spec, handler)
        resumption = self._resumption
        if resumption is not None and resumption.session is not None:
            session.positions = resumption.positions
        acceptance.hand_over(transport, session)
        self._session = session
        self._reader = asyncio.create_task(session.run(), name=f"grestws-read-{self.id[:8]}")
        return session

    # -- staying connected ------------------------------------------------------------

    def _watch(self) -> None:
        """Have the end of the current connection decide what comes next (no task waits
        for it: a connection costs one task, its reader)."""
        assert self._reader is not None
        self._reader.add_done_callback(self._ended)

    def _ended(self, reader: asyncio.Task[None]) -> None:
        """The connection ended: close for good, or start reconnecting."""
        if not reader.cancelled() and (error := reader.exception()) is not None:
            logger.error("reading from %s failed", self.url, exc_info=error)
        session = self._session
        assert session is not None
        self._link.down()
        code, reason = session.close_code, session.close_reason
        forced = self._pauses.take()
        if self._state is not ClientState.OPEN:
            self._finish(CloseCause.MANUAL)
            return
        policy = self.reconnect
        if policy is None or not (forced or policy.retry_close(code)):
            _run_callbacks(self._on_drop, "on_drop", Drop(code, reason, False))
            self._finish(CloseCause.DROPPED)
            return
        self._move(ClientState.RECONNECTING)
        _run_callbacks(self._on_drop, "on_drop", Drop(code, reason, True))
        first = 0.0 if forced else policy.first_pause(code)
        self._recovery = asyncio.get_running_loop().create_task(
            self._recover(policy, first), name=f"grestws-reconnect-{self.id[:8]}"
        )

    async def _recover(self, policy: Reconnect, first: float | None) -> None:
        """Reconnect, then watch the new connection; cancelled by :meth:`close`."""
        try:
            if await self._come_back(policy, first):
                self._watch()
        except asyncio.CancelledError:
            if self._state is not ClientState.CLOSED:
                self._finish(CloseCause.MANUAL)

    async def _come_back(self, policy: Reconnect, pause: float | None) -> bool:
        """Attempt until a connection is set up (True) or the policy gives up (False,
        closed for good). ``pause``: before the first attempt (None: the backoff's)."""
        backoff = Backoff(policy)
        for attempt in itertools.count(1):
            if len(self.urls) > 1:
                self._url_index = (self._url_index + 1) % len(self.urls)
            if pause is None:
                await self._pauses.pause(policy, backoff.next_delay())
            elif pause > 0:
                await self._pauses.pause(policy, pause)
            self._pauses.take()
            try:
                await self._attempt(reconnect=True, attempts=attempt)
            except Exception as exc:
                if self._state is not ClientState.RECONNECTING:  # closed meanwhile
                    self._finish(CloseCause.MANUAL)
                    return False
                if not policy.retry(exc):
                    self._finish(CloseCause.UNRECOVERABLE, exc)
                    return False
                if policy.max_attempts is not None and attempt >= policy.max_attempts:
                    self._finish(CloseCause.RETRIES_EXHAUSTED, exc)
                    return False
                if PEER_LOG.allow("reconnect"):
                    logger.info("reconnect to %s failed (attempt %d): %s", self.url, attempt, exc)
                # force_reconnect() during the attempt: no pause; else the backoff's
                pause = 0.0 if self._pauses.forced else None
                continue
            if self._state is not ClientState.RECONNECTING:  # closed while it connected
                if self._session is not None:
                    await self._session.transport.close(CLOSE_NORMAL, "")
                self._finish(CloseCause.MANUAL)
                return False
            self._move(ClientState.OPEN)
            return True
        raise AssertionError("unreachable")  # pragma: no cover

    async def force_reconnect(self) -> None:
        """Drop the connection and connect again at once (a reconnect that waits for its
        next attempt is made now); the setup callbacks run again.

        Raises:
            InvalidStateError: the client is not connected or reconnecting.
        """
        if self._state is ClientState.RECONNECTING:
            self._pauses.force()
            return
        if self._state is not ClientState.OPEN or self._session is None:
            raise InvalidStateError(f"cannot reconnect a client that is {self._state.value}")
        self._pauses.force()
        await self._session.transport.close(CLOSE_NORMAL, "Reconnecting")

    def _finish(self, cause: CloseCause, error: BaseException | None = None) -> None:
        """Close for good: fail every waiting call and run the ``on_close`` callbacks."""
        if self._state is not ClientState.CLOSED:
            self._state = ClientState.CLOSED
        self.close_cause = cause
        self.close_error = error
        session = self._session
        code = None if session is None else session.close_code
        reason = "" if session is None else session.close_reason
        self._link.close(ConnectionClosedError(code, reason or f"client closed: {cause.value}"))
        if session is not None:
            for callback in self._on_close:
                try:
                    callback(code, reason)
                except Exception:
                    logger.exception("on_close callback failed")

    # -- closing ----------------------------------------------------------------------

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Close gracefully: wait (at most ``timeout`` s) for pending requests, both ways,
        then close with 1000, for good. Requests still pending then fail with
        ConnectionLostError; a reconnect under way stops.

        Idempotent. Cancelling it leaves the connection open.
        """
        session = self._session
        if self._state is ClientState.RECONNECTING:
            await self.close()
            return
        if session is None or self._state in (ClientState.CLOSING, ClientState.CLOSED):
            await self._wait_closed()
            return
        self._move(ClientState.CLOSING)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await session.wait_pending(timeout)
            await session.wait_idle(max(0.0, deadline - loop.time()))
        except asyncio.CancelledError:
            if not session.closed:
                self._move(ClientState.OPEN)
            raise
        await session.transport.close(CLOSE_NORMAL, "")
        await self._wait_closed()

    async def close(self) -> None:
        """Close at once with 1000, for good: every pending request fails with
        ConnectionLostError, every call waiting for a connection with ConnectionClosedError,
        and a reconnect under way stops.

        Idempotent.
        """
        state = self._state
        if state in (ClientState.OPEN, ClientState.RECONNECTING):
            self._move(ClientState.CLOSING)
        if state is ClientState.RECONNECTING and self._recovery is not None:
            self._recovery.cancel()
        session = self._session
        if session is not None and self._state is not ClientState.CLOSED:
            await session.transport.close(CLOSE_NORMAL, "")
        await self._wait_closed()

    async def _wait_closed(self) -> None:
        """Wait until a reconnect under way has ended, then until the connection has."""
        if self._recovery is not None:
            await asyncio.wait((self._recovery,))
        if self._reader is not None:
            await asyncio.wait((self._reader,))

    @property
    def close_code(self) -> int | None:
        """The close code of the last connection once it closed, else None."""
        return None if self._session is None else self._session.close_code

    async def __aenter__(self) -> Self:
        if self._state is ClientState.NEW:
            await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()


def _run_callbacks(callbacks: Sequence[Callable[[Any], object]], what: str, value: Any) -> None:
    for callback in callbacks:
        try:
            callback(value)
        except Exception:
            logger.exception("%s callback failed", what)


_DIALED = ("max_message_size", "ping_interval", "ping_timeout", "compression")
"""The options :class:`Client` hands to the websockets dialer it makes."""


def _dialed_default(name: str) -> object:
    """The default of one of :class:`Client`'s :data:`_DIALED` options, from its signature."""
    return inspect.signature(Client).parameters[name].default


class ClientOptions(TypedDict, total=False):
    """The keyword options of :class:`Client`, for :func:`connect`."""

    timeout: float | None
    handshake_timeout: float
    headers: Headers | None
    upgrade_headers: Mapping[str, str] | None
    max_message_size: int
    ping_interval: float | None
    ping_timeout: float | None
    compression: bool
    dialer: Dialer | None
    reconnect: Reconnect | bool
    wait_for_connection: bool
    setup: Setup | None
    recover: bool
    interceptors: Sequence[Interceptor]


def connect(
    url: str | Sequence[str],
    schema: SocketSchema[C2S, S2C, Q],
    *,
    handlers: S2C | None = None,
    query: Q | None = None,
    retry: bool = False,
    **options: Unpack[ClientOptions],
) -> Opening[Client[C2S, S2C]]:
    """Connect to ``schema`` on the server at ``url``.

    ``client = await connect(...)`` hands over an open client (end it with
    ``await client.disconnect()``); ``async with connect(...) as client:`` also
    disconnects on the way out. ``retry`` is :meth:`Client.connect`'s; the other
    arguments are those of :class:`Client`.
    """
    client: Client[C2S, S2C] = Client(url, schema, handlers=handlers, query=query, **options)

    async def close(c: Client[C2S, S2C]) -> None:
        await c.disconnect()

    async def open() -> Client[C2S, S2C]:
        return await client.connect(retry=retry)

    return Opening(open, close)
