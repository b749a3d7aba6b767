"""Serving an :class:`~grestws.app.App` with the websockets asyncio server."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection as WebSocketConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request, Response

from grestws._util import Opening, settle_allocator
from grestws.app import App
from grestws.connections import ServerConnection
from grestws.context import ConnectRequest, Headers
from grestws.transports.websockets import PushServerConnection, WebsocketsTransport

__all__ = ("Server", "serve")


class Server:
    """A running server. Made by :func:`serve`; use ``await server.close()`` to stop it.

    Attributes:
        app: What it serves.
    """

    def __init__(self, app: App, ws_server: WebSocketServer) -> None:
        self.app = app
        self._address: tuple[str, int] = ws_server.sockets[0].getsockname()[:2]
        self._ws_server = ws_server
        self._closing: asyncio.Task[None] | None = None

    @property
    def connections(self) -> set[ServerConnection[Any]]:
        """The open connections of this server (handshake done, not closed), as a new set."""
        return self.app.connections.open(owner=self)

    @property
    def sockets(self) -> Sequence[Any]:
        """The listening sockets."""
        return tuple(self._ws_server.sockets)

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
            self._ws_server.close(close_connections=False)
            self._closing = asyncio.ensure_future(self._shutdown(timeout))
        await asyncio.shield(self._closing)

    @property
    def closing(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing is not None

    async def _shutdown(self, timeout: float | None) -> None:
        await self.app.shutdown(timeout, owner=self)
        await self._ws_server.wait_closed()
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
            await self._ws_server.wait_closed()
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
    **options: Any,
) -> Opening[Server]:
    """Serve ``app`` on ``host:port`` with the websockets asyncio server.

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
            saves on small messages).
        options: Passed to ``websockets.asyncio.server.serve`` (``ssl``, ``sock``, ...).

    Raises:
        ContractError: the App declares permissions it could never grant, or leaves
            methods without one in strict mode (see :meth:`App.permission_problems`); the
            message lists every affected method. Nothing is listening then.
    """

    async def open() -> Server:
        await app.start()
        settle_allocator()
        server: Server | None = None

        async def handler(ws: WebSocketConnection) -> None:
            assert isinstance(ws, PushServerConnection)  # made by create_connection
            request = ws.request
            assert request is not None  # websockets sets it before calling the handler
            transport = WebsocketsTransport(
                ws,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                close_timeout=app.limits.close_timeout,
            )
            await app.handle(transport, connect_request(request, ws), server)

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
        server = Server(app, ws_server)
        return server

    async def close(server: Server) -> None:
        await server.close()

    return Opening(open, close)


def connect_request(request: Request, ws: WebSocketConnection) -> ConnectRequest:
    """The transport-neutral view of a websockets upgrade request."""
    url = urlsplit(request.path)
    return ConnectRequest(
        path=url.path,
        query=dict(parse_qsl(url.query, keep_blank_values=True)),
        headers=Headers(request.headers.raw_items()),
        remote_address=ws.remote_address,
    )
