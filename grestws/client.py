"""The typed client: :func:`connect` and :class:`Client`."""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, Self, TypedDict, TypeVar, overload
from urllib.parse import urlencode, urlsplit, urlunsplit

from typing_extensions import Unpack

from grestws._util import Opening, settle_allocator
from grestws.context import Connection
from grestws.contract.contract import SocketSchema
from grestws.contract.methods import MethodSpec
from grestws.exceptions import (
    ConnectionClosedError,
    GrestwsError,
    HandshakeTimeoutError,
    InvalidStateError,
    ValidationError,
)
from grestws.handshake import FirstFrame, offer
from grestws.incidents import PEER_LOG, Incident, IncidentKind, Incidents
from grestws.middleware import ClientHandshake
from grestws.protocol.frames import CLOSE_INVALID_QUERY
from grestws.session import Session
from grestws.transports import Dialer, Transport
from grestws.transports.websockets import WebsocketsDialer

__all__ = ("Client", "ClientOptions", "ClientState", "Registrar0", "Registrar1", "connect")

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
    """The lifecycle of a :class:`Client`: NEW -> CONNECTING -> OPEN -> CLOSING -> CLOSED."""

    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS: dict[ClientState, set[ClientState]] = {
    ClientState.NEW: {ClientState.CONNECTING},
    ClientState.CONNECTING: {ClientState.OPEN, ClientState.CLOSED},
    ClientState.OPEN: {ClientState.CLOSING, ClientState.CLOSED},
    ClientState.CLOSING: {ClientState.CLOSED, ClientState.OPEN},  # OPEN: a cancelled disconnect
    ClientState.CLOSED: set(),
}


class Client(Connection, Generic[C2S, S2C]):
    """A typed connection to one schema on a server.

    Args:
        url: The server's base URL (``ws://127.0.0.1:8765``); the schema's path is appended
            to its path, unless that path already ends with it: the full URL that
            ``grestws serve`` logs (``ws://127.0.0.1:8765/ws/chat``) works as well.
        schema: The schema to talk to.
        query: The query to connect with, of the schema's query type; checked before the
            socket opens (a ValidationError raised locally) and sent as URL parameters.
        handlers: An object implementing the ``server_to_client`` Protocol, if the client
            serves all of it; use :meth:`on` to serve a subset.
        timeout: Default seconds to wait for a response (None: wait forever).
        handshake_timeout: Seconds to wait for the connection to open and for ``k``/``x``.
        headers: Handshake headers sent in the ``h`` frame.
        upgrade_headers: HTTP headers of the upgrade request itself (a ``Cookie``, say);
            browsers cannot set these, so servers should not require them.
        max_message_size: Largest incoming frame in bytes.
        ping_interval, ping_timeout: WebSocket protocol pings, as on the server.
        compression: Offer permessage-deflate.
        dialer: How to open the transport (:class:`~grestws.transports.Dialer`); the
            default opens a socket with websockets, with the three options above, which
            do not apply to another dialer. :func:`grestws.testkit.call_on` passes one
            that connects to an App in the same process.

    Concurrency: any number of tasks may call through :attr:`outgoing` at once; responses
    are matched by id. Handlers for the server's calls run concurrently, each in its own task.
    """

    def __init__(
        self,
        url: str,
        schema: SocketSchema[C2S, S2C, Q],
        *,
        handlers: S2C | None = None,
        query: Q | None = None,
        timeout: float | None = 30.0,
        handshake_timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        upgrade_headers: Mapping[str, str] | None = None,
        max_message_size: int = 1 << 20,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 10.0,
        compression: bool = False,
        dialer: Dialer | None = None,
    ) -> None:
        super().__init__(uuid.uuid4().hex, schema.path, None, "client")
        self.schema: SocketSchema[C2S, S2C, Any] = schema
        self.url = _join(url, schema.path)
        self.query: Any = query
        self.timeout = timeout
        self.handshake_timeout = handshake_timeout
        self.headers = dict(headers or {})
        self.upgrade_headers = dict(upgrade_headers or {})
        if dialer is None:
            dialer = WebsocketsDialer(
                max_message_size=max_message_size,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                compression=compression,
            )
        self._dialer = dialer
        self._state = ClientState.NEW
        self._handler_object = handlers
        self._functions: dict[str, tuple[MethodSpec, Callable[..., Awaitable[Any]]]] = {}
        self._on_close: list[Callable[[int | None, str], object]] = []
        self._on_error: list[Callable[[GrestwsError], object]] = []
        self._session: Session | None = None
        self._outgoing: C2S | None = None
        self._reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Client {self.url} {self._state.value}>"

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

        Raises:
            InvalidStateError: the client has not connected yet.
        """
        if self._outgoing is None:
            raise InvalidStateError("connect() first")
        return self._outgoing

    def with_timeout(self, timeout: float | None) -> C2S:
        """A proxy like :attr:`outgoing` whose requests time out after ``timeout`` s."""
        if self._session is None:
            raise InvalidStateError("connect() first")
        proxy: C2S = self.schema.contract.client_to_server.proxy(self._session, timeout)
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
        connecting; a call that arrives while no function serves it gets ROUTE_NOT_FOUND
        (a request) or is dropped and reported (a message), and a WARNING "no handler for
        <path>" is logged (a few per interval at most). The function is handed back.

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

    def on_close(self, callback: Callable[[int | None, str], object]) -> None:
        """Call ``callback(code, reason)`` when the connection closes, whoever closed it
        (at once if it has closed already)."""
        if self._state is ClientState.CLOSED and self._session is not None:
            callback(self._session.close_code, self._session.close_reason)
        else:
            self._on_close.append(callback)

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
        for callback in self._on_error:
            try:
                callback(error)
            except Exception:
                logger.exception("on_error callback failed")

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

    async def connect(self) -> Self:
        """Open the socket and run the handshake.

        Cancel-safe: cancelling closes whatever was opened.

        Raises:
            ValidationError: the query does not fit the schema's query type (checked before
                anything is sent), or the server closed with 4000 (invalid query).
            ApiError: the server refused the handshake (``x``), as the error's own class.
            HandshakeTimeoutError: no ``k``/``x`` within ``handshake_timeout``.
            ConnectError: the socket could not be opened (refused, HTTP 404, ...).
            ConnectionClosedError: the server closed the socket during the handshake.
            InvalidStateError: the client was connected before.
        """
        url = self.url
        if self.schema.query is not None:
            url = _with_query(url, self.schema.encode_query(self.query))
        self._move(ClientState.CONNECTING)
        try:
            transport = await self._dial(url)
            acceptance = await self._handshake(transport)
        except BaseException:
            self._move(ClientState.CLOSED)
            raise
        self._wire(transport, acceptance)
        return self

    async def _dial(self, url: str) -> Transport:
        """Open the transport.

        Raises:
            ConnectError: it could not be opened.
            HandshakeTimeoutError: not within ``handshake_timeout``.
        """
        settle_allocator()
        try:
            dialed = await asyncio.wait_for(self._dialer(url, self.upgrade_headers), self.handshake_timeout)
        except TimeoutError as exc:
            raise HandshakeTimeoutError(
                f"{self.url}: no connection within {self.handshake_timeout:g} s"
            ) from exc
        self.remote_address = dialed.remote_address
        return dialed.transport

    async def _handshake(self, transport: Transport) -> FirstFrame:
        """Send ``h`` and wait for ``k``; close the socket when it fails.

        Raises:
            ApiError: the server refused (``x``).
            ValidationError: the server closed with 4000 (invalid query).
            HandshakeTimeoutError: no answer within ``handshake_timeout``.
            ConnectionClosedError: the server closed the socket first.
        """
        try:
            return await offer(
                transport, self._handshake_headers(), self.schema.contract.errors, self.handshake_timeout
            )
        except BaseException as exc:
            await transport.close()
            if isinstance(exc, ConnectionClosedError) and exc.code == CLOSE_INVALID_QUERY:
                raise ValidationError(exc.reason or "Invalid query parameters", data=[]) from exc
            if isinstance(exc, TimeoutError):
                raise HandshakeTimeoutError(
                    f"{self.url}: no handshake answer within {self.handshake_timeout:g} s"
                ) from exc
            raise

    def _wire(self, transport: Transport, acceptance: FirstFrame) -> None:
        """Make the session, bind the handlers, hand it the frames and start reading."""
        session = Session(
            transport,
            self,
            incoming=self.schema.contract.server_to_client,
            outgoing=self.schema.contract.client_to_server,
            incidents=Incidents(self._report),
        )
        if self._handler_object is not None:
            session.bind(self._handler_object)
        for spec, handler in self._functions.values():
            session.bind_one(spec, handler)
        acceptance.hand_over(transport, session)
        self._session = session
        self._outgoing = self.schema.contract.client_to_server.proxy(session, self.timeout)
        self._move(ClientState.OPEN)
        self._reader = asyncio.create_task(self._read(session), name=f"grestws-client-{self.id[:8]}")

    def _handshake_headers(self) -> dict[str, str]:
        """The ``h`` headers: the client's own, then what each middleware adds, in order."""
        handshake = ClientHandshake(self.url, dict(self.headers))
        for middleware in self.schema.middleware:
            middleware.update_handshake(handshake)
        return handshake.headers

    async def _read(self, session: Session) -> None:
        try:
            await session.run()
        finally:
            if self._state is not ClientState.CLOSED:
                self._move(ClientState.CLOSED)
            for callback in self._on_close:
                try:
                    callback(session.close_code, session.close_reason)
                except Exception:
                    logger.exception("on_close callback failed")

    # -- closing ----------------------------------------------------------------------

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Close gracefully: wait (at most ``timeout`` s) for pending requests, both ways,
        then close with 1000. Requests still pending then fail with ConnectionClosedError.

        Idempotent. Cancelling it leaves the connection open.
        """
        session = self._session
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
        await session.transport.close(1000, "")
        await self._wait_closed()

    async def close(self) -> None:
        """Close at once with 1000; every pending request fails with ConnectionClosedError.

        Idempotent.
        """
        session = self._session
        if session is not None and self._state is ClientState.OPEN:
            self._move(ClientState.CLOSING)
        if session is not None and self._state is not ClientState.CLOSED:
            await session.transport.close(1000, "")
        await self._wait_closed()

    async def _wait_closed(self) -> None:
        if self._reader is not None:
            await asyncio.shield(self._reader)

    @property
    def close_code(self) -> int | None:
        """The close code once the connection closed, else None."""
        return None if self._session is None else self._session.close_code

    async def __aenter__(self) -> Self:
        if self._state is ClientState.NEW:
            await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, (parts.query, urlencode(params))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _join(base: str, path: str) -> str:
    """``base`` with the schema's ``path`` appended, unless its path already ends with it."""
    url = urlsplit(base)
    if url.scheme not in ("ws", "wss"):
        raise ValueError(f"expected a ws:// or wss:// URL, got {base!r}")
    prefix = url.path.rstrip("/")
    stem = path.rstrip("/")
    if stem and prefix.endswith(stem):
        prefix = prefix.removesuffix(stem)
    return urlunsplit((url.scheme, url.netloc, prefix + path, url.query, ""))


class ClientOptions(TypedDict, total=False):
    """The keyword options of :class:`Client`, for :func:`connect`."""

    timeout: float | None
    handshake_timeout: float
    headers: Mapping[str, str] | None
    upgrade_headers: Mapping[str, str] | None
    max_message_size: int
    ping_interval: float | None
    ping_timeout: float | None
    compression: bool
    dialer: Dialer | None


def connect(
    url: str,
    schema: SocketSchema[C2S, S2C, Q],
    *,
    handlers: S2C | None = None,
    query: Q | None = None,
    **options: Unpack[ClientOptions],
) -> Opening[Client[C2S, S2C]]:
    """Connect to ``schema`` on the server at ``url``.

    ``client = await connect(...)`` hands over an open client (end it with
    ``await client.disconnect()``); ``async with connect(...) as client:`` also
    disconnects on the way out. The arguments are those of :class:`Client`.
    """
    client: Client[C2S, S2C] = Client(url, schema, handlers=handlers, query=query, **options)

    async def close(c: Client[C2S, S2C]) -> None:
        await c.disconnect()

    return Opening(client.connect, close)
