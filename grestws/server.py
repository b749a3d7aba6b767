"""Serving an :class:`~grestws.app.App` with the websockets asyncio server, or with picows.

:class:`Server` is the same whichever library accepts the connections: what differs, the
:class:`Listener` (the listening sockets, stopping them, waiting for the connections'
handlers), is made by :func:`serve`. picows is imported only when it is asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection as WebSocketConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request, Response

from grestws._util import Opening, settle_allocator
from grestws.app import App
from grestws.connections import ServerConnection
from grestws.context import ConnectRequest, Headers
from grestws.transports import Transport
from grestws.transports.websockets import PushServerConnection, WebsocketsTransport

__all__ = ("Listener", "Server", "TransportName", "serve")

TransportName = Literal["websockets", "picows"]
"""The libraries :func:`serve` can accept connections with."""

_PICOWS_MISSING = "transport='picows' needs picows: pip install 'grestws[picows]'"


class Listener(Protocol):
    """What accepts a :class:`Server`'s connections and runs a handler for each."""

    @property
    def sockets(self) -> Sequence[Any]:
        """The listening sockets."""
        ...

    def close(self) -> None:
        """Stop accepting connections; leave the open ones alone."""
        ...

    async def wait_closed(self) -> None:
        """Wait until closed and every connection's handler returned."""
        ...


class _WebsocketsListener:
    """The websockets server as a :class:`Listener`."""

    __slots__ = ("_server",)

    def __init__(self, server: WebSocketServer) -> None:
        self._server = server

    @property
    def sockets(self) -> Sequence[Any]:
        return tuple(self._server.sockets)

    def close(self) -> None:
        self._server.close(close_connections=False)

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


class Server:
    """A running server. Made by :func:`serve`; use ``await server.close()`` to stop it.

    Attributes:
        app: What it serves.
    """

    def __init__(self, app: App, listener: Listener) -> None:
        self.app = app
        self._address: tuple[str, int] = listener.sockets[0].getsockname()[:2]
        self._listener = listener
        self._closing: asyncio.Task[None] | None = None

    @property
    def connections(self) -> set[ServerConnection[Any]]:
        """The open connections of this server (handshake done, not closed), as a new set."""
        return self.app.connections.open(owner=self)

    @property
    def sockets(self) -> Sequence[Any]:
        """The listening sockets."""
        return tuple(self._listener.sockets)

    @property
    def host(self) -> str:
        """The address of the first listening socket (still known after close)."""
        return str(self._address[0])

    @property
    def port(self) -> int:
        """The port of the first listening socket: the real one when 0 was asked for."""
        return int(self._address[1])

    @property
    def url(self) -> str:
        """``ws://host:port`` of the first listening socket; clients add the schema's path."""
        host = self.host
        return f"ws://[{host}]:{self.port}" if ":" in host else f"ws://{host}:{self.port}"

    def urls(self) -> list[str]:
        """The full URL of every schema served."""
        return [self.url + path for path in self.app.routes]

    async def close(self, timeout: float | None = None) -> None:
        """Shut down gracefully.

        Stop accepting connections; let calls in flight finish for at most ``timeout``
        seconds (the app's ``shutdown_timeout`` by default) while new requests are answered
        UNAVAILABLE "Server is shutting down"; cancel what is still running; close every
        connection of this server with 1012 (reconnecting clients come back at once);
        stop the App's broker. Idempotent;
        concurrent calls wait for the same shutdown.
        """
        if self._closing is None:
            self._listener.close()
            self._closing = asyncio.ensure_future(self._shutdown(timeout))
        await asyncio.shield(self._closing)

    @property
    def closing(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing is not None

    async def _shutdown(self, timeout: float | None) -> None:
        await self.app.shutdown(timeout, owner=self)
        await self._listener.wait_closed()
        await self.app.stop()

    async def close_identity(self, identity_id: str, reason: str = "Access revoked") -> int:
        """Close every connection of the App that acts for ``identity_id`` at once, with
        close code 1008 (policy violation) and ``reason``, which the client sees in
        ``on_close``: see :meth:`grestws.connections.Connections.close_identity`.

        Identities are resolved at the handshake and kept for a connection's life, so this
        is how a revocation takes effect before the client disconnects.

        Returns:
            How many connections were closed.
        """
        return await self.app.connections.close_identity(identity_id, reason)

    async def serve_forever(self) -> None:
        """Serve until cancelled or closed; cancelling it shuts the server down gracefully."""
        try:
            await self._listener.wait_closed()
        finally:
            await self.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def serve(
    app: App,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    ping_interval: float | None = 30.0,
    ping_timeout: float | None = 10.0,
    compression: bool = False,
    transport: TransportName = "websockets",
    **options: Any,
) -> Opening[Server]:
    """Serve ``app`` on ``host:port`` with the websockets asyncio server, or with picows.

    ``server = await serve(app, ...)`` starts it; ``async with serve(app, ...) as server:``
    also shuts it down gracefully on the way out. Port 0 asks the OS for a free port (see
    :attr:`Server.port`). An unknown URL path gets HTTP 404 at the upgrade.

    Args:
        app: What to serve.
        host: The address to listen on.
        port: The port (0: any free one).
        ping_interval: Seconds of silence from a client before it is pinged (None: never).
        ping_timeout: Seconds a pinged client has to send anything before it is dropped;
            a dead client is released ``ping_interval + ping_timeout`` after its last frame.
        compression: Offer permessage-deflate (off by default: it costs more than it
            saves on small messages). websockets only.
        transport: What accepts the connections: ``"websockets"`` (the default) or
            ``"picows"`` (the ``picows`` extra: ``pip install 'grestws[picows]'``). Both
            answer upgrades, apply the limits, watch liveness and shut down alike.
        options: Passed to ``websockets.asyncio.server.serve`` (``ssl``, ``sock``, ...),
            or to ``picows.ws_create_server`` (``ssl``, ``reuse_port``, ...).

    Raises:
        ValueError: an unknown ``transport``, or compression asked of picows.
        ImportError: ``transport="picows"`` without picows installed (when awaited).
        ContractError: the App declares permissions it could never grant, or leaves
            methods without one in strict mode (see :meth:`App.permission_problems`); the
            message lists every affected method. Nothing is listening then.
    """
    if transport not in ("websockets", "picows"):
        raise ValueError(f"unknown transport {transport!r}: expected 'websockets' or 'picows'")
    if transport == "picows" and compression:
        raise ValueError("picows has no permessage-deflate: serve with compression=False")

    async def open() -> Server:
        await app.start()
        settle_allocator()
        server: Server | None = None

        def handle(connection: Transport, request: ConnectRequest) -> Awaitable[None]:
            # A plain function handing over app.handle's coroutine: no frame of its own
            # stays alive for the connection's lifetime.
            return app.handle(connection, request, server)

        if transport == "picows":
            listener = await _picows_listen(app, handle, host, port, ping_interval, ping_timeout, options)
        else:
            listener = await _websockets_listen(
                app, handle, host, port, ping_interval, ping_timeout, compression, options
            )
        server = Server(app, listener)
        return server

    async def close(server: Server) -> None:
        await server.close()

    return Opening(open, close)


Handle = Callable[[Transport, ConnectRequest], Awaitable[None]]


async def _picows_listen(
    app: App,
    handle: Handle,
    host: str,
    port: int,
    ping_interval: float | None,
    ping_timeout: float | None,
    options: dict[str, Any],
) -> Listener:
    """Listen with picows, imported now; every connection goes to ``handle``.

    Raises:
        ImportError: picows is not installed.
    """
    try:
        from grestws.transports.picows_server import listen
    except ModuleNotFoundError as exc:
        if exc.name != "picows":
            raise
        raise ImportError(_PICOWS_MISSING, name="picows") from exc
    return await listen(
        handle,
        app.refusal,
        app.limits,
        host,
        port,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        **options,
    )


async def _websockets_listen(
    app: App,
    handle: Handle,
    host: str,
    port: int,
    ping_interval: float | None,
    ping_timeout: float | None,
    compression: bool,
    options: dict[str, Any],
) -> Listener:
    """Listen with the websockets asyncio server; every connection goes to ``handle``."""

    def handler(ws: WebSocketConnection) -> Awaitable[None]:
        assert isinstance(ws, PushServerConnection)  # made by create_connection
        request = ws.request
        assert request is not None  # websockets sets it before calling the handler
        connect = connect_request(request, ws)
        ws.response = None  # the 101 answer sent: nothing reads it after the handshake
        transport = WebsocketsTransport(
            ws,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=app.limits.close_timeout,
        )
        return handle(transport, connect)

    def process_request(ws: WebSocketConnection, request: Request) -> Response | None:
        refusal = app.refusal(urlsplit(request.path).path, Headers(request.headers.raw_items()))
        if refusal is not None:
            return ws.respond(refusal.status, refusal.reason + "\n")
        return None

    ws_server = await ws_serve(
        handler,
        host,
        port,
        process_request=process_request,
        create_connection=PushServerConnection,
        compression="deflate" if compression else None,
        max_size=app.limits.max_message_size,
        ping_interval=None,  # liveness is grestws's own: see grestws.liveness
        close_timeout=app.limits.close_timeout,
        **options,
    )
    return _WebsocketsListener(ws_server)


def connect_request(request: Request, ws: WebSocketConnection) -> ConnectRequest:
    """The transport-neutral view of a websockets upgrade request."""
    url = urlsplit(request.path)
    return ConnectRequest(
        path=url.path,
        query=dict(parse_qsl(url.query, keep_blank_values=True)),
        headers=Headers(request.headers.raw_items()),
        remote_address=ws.remote_address,
    )
