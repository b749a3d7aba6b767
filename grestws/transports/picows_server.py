"""The picows server behind :func:`grestws.serve` with ``transport="picows"``: the
listening sockets, the upgrade (refused with the App's HTTP status, or accepted with a
:class:`~grestws.transports.picows.PicowsTransport`) and a task per connection.

grestws imports this module only when picows is asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from picows import (
    WSListener,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,  # pyright: ignore[reportUnknownVariableType]  # its **kwargs are untyped
)

from grestws.context import ConnectRequest, Headers
from grestws.limits import Limits
from grestws.transports import Refusal, Transport
from grestws.transports.picows import NO_LIMIT, PicowsLog, PicowsTransport

__all__ = ("Handle", "PicowsListener", "Refuse", "listen")

logger = logging.getLogger("grestws")

_SERVER_LOG = PicowsLog(logging.getLogger("picows.server"))

Handle = Callable[[Transport, ConnectRequest], Awaitable[None]]
"""Runs one accepted connection to its end (``App.handle`` with its server)."""
Refuse = Callable[[str, Mapping[str, str]], Refusal | None]
"""Why an upgrade to a path with these headers is refused (``App.refusal``), or None."""


class PicowsListener:
    """The listening sockets of a picows server and the connections they accepted: what
    :class:`grestws.Server` needs of it. Made by :func:`listen`.

    An upgrade that ``refuse`` refuses is answered with its HTTP status and reason, as
    the websockets server answers it; an accepted one gets a :class:`PicowsTransport`
    and a task that runs ``handle`` for it, then closes it.

    Concurrency: each connection runs in its own task; :meth:`wait_closed` may be awaited
    by several tasks.
    """

    __slots__ = ("_handle", "_limits", "_pings", "_refuse", "_server", "_stopped", "_tasks")

    def __init__(
        self,
        handle: Handle,
        refuse: Refuse,
        limits: Limits,
        ping_interval: float | None,
        ping_timeout: float | None,
    ) -> None:
        self._handle = handle
        self._refuse = refuse
        self._limits = limits
        self._pings = (ping_interval, ping_timeout)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()

    async def start(self, host: str | Sequence[str] | None, port: int, **options: Any) -> None:
        """Listen on ``host:port``; ``options`` go to ``picows.ws_create_server``.

        Raises:
            OSError: the address could not be bound.
        """
        limits = self._limits
        self._server = await ws_create_server(
            self.accept,
            host,
            port,
            max_frame_size=NO_LIMIT if limits.max_message_size is None else limits.max_message_size,
            enable_auto_ping=False,  # liveness is grestws's own: see grestws.liveness
            enable_auto_pong=False,  # a ping counts as activity: PicowsTransport answers it
            logger_name=_SERVER_LOG,
            **options,
        )

    @property
    def sockets(self) -> Sequence[Any]:
        """The listening sockets."""
        return () if self._server is None else tuple(self._server.sockets)

    def close(self) -> None:
        """Stop accepting connections; the open ones go on (their handlers close them)."""
        if self._server is not None:
            self._server.close()
        self._stopped.set()

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` was called and every connection's handler returned.
        Cancel-safe: cancelling the wait leaves the connections alone."""
        await self._stopped.wait()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def accept(self, request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener:
        """picows' listener factory: refuse the upgrade, or make its transport."""
        url = urlsplit(request.path.decode("latin-1"))
        headers = Headers(request.headers.items())
        refusal = self._refuse(url.path, headers)
        if refusal is not None:
            response = WSUpgradeResponse.create_error_response(
                refusal.status,
                (refusal.reason + "\n").encode(),
                {"Content-Type": "text/plain; charset=utf-8"},
            )
            return WSUpgradeResponseWithListener(response, None)
        query = dict(parse_qsl(url.query, keep_blank_values=True))

        def opened(transport: PicowsTransport) -> None:
            connect = ConnectRequest(url.path, query, headers, transport.remote_address)
            task = asyncio.get_running_loop().create_task(_serve_one(self._handle, transport, connect))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        ping_interval, ping_timeout = self._pings
        return PicowsTransport(
            max_message_size=self._limits.max_message_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=self._limits.close_timeout,
            opened=opened,
        )


async def _serve_one(handle: Handle, transport: PicowsTransport, request: ConnectRequest) -> None:
    """Run one connection's handler, then close it (1011 when the handler failed)."""
    try:
        await handle(transport, request)
    except Exception:
        logger.exception("connection handler failed")
        await transport.close(1011, "")
    finally:
        await transport.close()


async def listen(
    handle: Handle,
    refuse: Refuse,
    limits: Limits,
    host: str | Sequence[str] | None,
    port: int,
    *,
    ping_interval: float | None = 30.0,
    ping_timeout: float | None = 10.0,
    **options: Any,
) -> PicowsListener:
    """Listen on ``host:port`` with picows (see :class:`PicowsListener`).

    Args:
        handle: Runs one connection to its end.
        refuse: Says why an upgrade is refused, if it is.
        limits: ``max_message_size`` and ``close_timeout``.
        host, port: Where to listen (port 0: any free one).
        ping_interval, ping_timeout: grestws's liveness watch.
        options: Passed to ``picows.ws_create_server`` (``ssl``, ``reuse_port``,
            ``websocket_handshake_timeout``, ...).

    Raises:
        OSError: the address could not be bound.
    """
    listener = PicowsListener(handle, refuse, limits, ping_interval, ping_timeout)
    await listener.start(host, port, **options)
    return listener
