"""Serving an :class:`~grestws.app.App` with the websockets asyncio server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection as WebSocketConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request, Response

from grestws._util import Opening, settle_allocator
from grestws._websockets import PushServerConnection, WebsocketsTransport
from grestws.app import App, ConnectRequest, ServerConnection
from grestws.exceptions import InvalidStateError
from grestws.protocol.frames import CLOSE_NORMAL, CLOSE_POLICY

__all__ = ("Server", "serve")

logger = logging.getLogger("grestws")


class Server:
    """A running server. Made by :func:`serve`; use ``await server.close()`` to stop it.

    Attributes:
        app: What it serves.
    """

    def __init__(self, app: App, ws_server: WebSocketServer) -> None:
        self.app = app
        self._live: set[ServerConnection[Any]] = set()
        self._address: tuple[str, int] = ws_server.sockets[0].getsockname()[:2]
        self._ws_server = ws_server
        self._closing: asyncio.Task[None] | None = None

    @property
    def connections(self) -> set[ServerConnection[Any]]:
        """The open connections (handshake done, not closed), as a new set."""
        return {conn for conn in self._live if conn.is_open}

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
        SERVER_ERROR "Server is shutting down"; cancel what is still running; close every
        connection with 1000. Idempotent; concurrent calls wait for the same shutdown.
        """
        if self._closing is None:
            grace = self.app.shutdown_timeout if timeout is None else timeout
            self._ws_server.close(close_connections=False)
            live = list(self._live)
            for conn in live:
                conn._session.draining = True
            self._closing = asyncio.ensure_future(self._shutdown(live, grace))
        await asyncio.shield(self._closing)

    @property
    def closing(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing is not None

    async def _shutdown(self, live: list[ServerConnection[Any]], grace: float) -> None:
        if live:
            await asyncio.gather(*(conn._session.wait_idle(grace) for conn in live))
            for conn in live:
                conn._session.cancel_tasks()
            await asyncio.gather(*(conn.close(CLOSE_NORMAL, "Server shutting down") for conn in live))
        await self._ws_server.wait_closed()

    async def close_identity(self, identity_id: str, reason: str = "Access revoked") -> int:
        """Close every connection that acts for ``identity_id`` at once, with close code
        1008 (policy violation) and ``reason``, which the client sees in ``on_close``.

        Identities are resolved at the handshake and kept for a connection's life, so this
        is how a revocation takes effect before the client disconnects.

        Returns:
            How many connections were closed.
        """
        targets = [
            conn for conn in self._live if conn.identity is not None and conn.identity.id == identity_id
        ]
        await asyncio.gather(*(conn.close(CLOSE_POLICY, reason) for conn in targets))
        return len(targets)

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


def serve(app: App, host: str = "127.0.0.1", port: int = 8765, **options: Any) -> Opening[Server]:
    """Serve ``app`` on ``host:port`` with the websockets asyncio server.

    ``server = await serve(app, ...)`` starts it; ``async with serve(app, ...) as server:``
    also shuts it down gracefully on the way out. Port 0 asks the OS for a free port (see
    :attr:`Server.port`). Extra ``options`` go to ``websockets.asyncio.server.serve``.
    An unknown URL path gets HTTP 404 at the upgrade.

    Raises:
        ContractError: the App declares permissions it could never grant, or leaves
            methods without one in strict mode (see :meth:`App.permission_problems`); the
            message lists every affected method. Nothing is listening then.
    """

    async def open() -> Server:
        app.check()
        settle_allocator()
        server: Server | None = None

        async def handler(ws: WebSocketConnection) -> None:
            assert isinstance(ws, PushServerConnection)  # made by create_connection
            if server is None:  # pragma: no cover - serve() returns before any connection
                raise InvalidStateError("server not ready")
            request = ws.request
            assert request is not None  # websockets sets it before calling the handler
            transport = WebsocketsTransport(
                ws,
                ping_interval=app.ping_interval,
                ping_timeout=app.ping_timeout,
                close_timeout=app.limits.close_timeout,
            )
            await app.handle(transport, connect_request(request, ws), server._live)

        def process_request(ws: WebSocketConnection, request: Request) -> Response | None:
            path = urlsplit(request.path).path
            if path not in app.routes:
                return ws.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
            refusal = app.refusal(path, request.headers, 0 if server is None else len(server._live))
            if refusal is not None:
                return ws.respond(refusal.status, refusal.reason + "\n")
            return None

        ws_server = await ws_serve(
            handler,
            host,
            port,
            process_request=process_request,
            create_connection=PushServerConnection,
            compression="deflate" if app.compression else None,
            max_size=app.max_message_size,
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
        headers=request.headers,
        remote_address=ws.remote_address,
    )
