"""picows (a WebSocket library written in Cython) behind the
:class:`~grestws.transports.Transport` interface, on both sides, and the client's
:class:`PicowsDialer`; the server that :func:`grestws.serve` runs with
``transport="picows"`` is :mod:`grestws.transports.picows_server`.

Install it with ``pip install 'grestws[picows]'``; grestws imports this module only when
picows is asked for. It behaves as :mod:`grestws.transports.websockets` does: whole
messages go from picows' frame callback straight to the session's sink (fragments
joined, text and binary alike as bytes), ``Limits.max_message_size`` closes with 1009,
liveness is grestws's own (:class:`~grestws.liveness.Liveness`: any frame counts, a silent
peer is dropped after ping interval + ping timeout), and the close codes seen are the
same. picows' own keepalive and automatic pongs are off: grestws answers pings itself, so
that a ping counts as activity.

picows hands frames to a *listener*; here the transport is the listener of its
connection. It logs what peers get wrong (a frame over the size limit, say) at ERROR and
every connection at INFO: grestws hands it loggers that log these one level lower (INFO
and DEBUG), under picows' own names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from time import monotonic as _monotonic
from typing import Any

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSInvalidStatusError,
    WSListener,
    WSMsgType,
    WSParsedURL,
    WSTransport,
    ws_connect,  # pyright: ignore[reportUnknownVariableType]  # its **kwargs are untyped
)

from grestws.exceptions import ConnectError, ConnectionClosedError
from grestws.liveness import Liveness
from grestws.protocol.frames import DEAD_PEER_REASON
from grestws.transports import Dialed, Inbox, Sink, settled_sends
from grestws.transports.lingering import linger

__all__ = ("NO_LIMIT", "PicowsDialer", "PicowsLog", "PicowsTransport")

logger = logging.getLogger("grestws")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_PING = WSMsgType.PING
_CLOSE = WSMsgType.CLOSE
NO_LIMIT = 1 << 62
"""picows' frame size cap when grestws sets none."""


class PicowsLog(logging.LoggerAdapter[logging.Logger]):
    """picows' logger, one level lower for what a peer causes: a protocol error (a frame
    over the size limit, a bad frame) from ERROR to INFO, the per-connection lines from
    INFO to DEBUG. What picows logs about grestws's own callbacks stays an ERROR."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level == logging.INFO:
            level = logging.DEBUG
        elif level >= logging.ERROR and isinstance(msg, str) and msg.startswith("WS parser error"):
            level = logging.INFO
        super().log(level, msg, *args, **kwargs)


_CLIENT_LOG = PicowsLog(logging.getLogger("picows.client"))


class PicowsTransport(WSListener):
    """One picows connection (either side) as a grestws transport; also its listener.

    Made by :func:`listen` (server side) and :class:`PicowsDialer` (client side), before
    the upgrade completes; picows then calls :meth:`on_ws_connected`.

    Args:
        max_message_size: Largest incoming message in bytes (None: no limit); a larger
            one (also when it comes in fragments) closes the connection with 1009. picows
            itself refuses a larger frame before reading it.
        ping_interval: Seconds of silence before a ping (None: no liveness watch).
        ping_timeout: Seconds a pinged peer has to send anything before it is dropped.
        close_timeout: Seconds the closing handshake may take before the connection is
            dropped.
        opened: Called with the transport once the upgrade is done (the server starts
            the connection's handler there).

    Concurrency: everything runs in the event loop; any number of tasks may ``send``
    at once (frames go out in the order of the calls); ``close`` may be called from
    several tasks, which all wait for the same close.
    """

    __slots__ = (
        "_closed",
        "_dead",
        "_drained",
        "_dropped",
        "_fragments",
        "_inbox",
        "_liveness",
        "_loop",
        "_max_size",
        "_opened",
        "_paused",
        "_pings",
        "_reading",
        "_sends",
        "_size",
        "_socket",
        "_ws",
        "close_timeout",
    )

    def __init__(
        self,
        *,
        max_message_size: int | None = 1 << 20,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        close_timeout: float = 2.0,
        opened: Callable[[PicowsTransport], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._ws: WSTransport | None = None
        self._socket: asyncio.Transport | None = None  # the ws's underlying transport
        self._max_size = max_message_size
        self._pings = (ping_interval, ping_timeout)
        self.close_timeout = close_timeout
        self._opened = opened
        self._liveness: Liveness | None = None
        self._inbox = Inbox()
        self._fragments: list[bytes] | None = None
        self._size = 0
        self._reading = True
        self._dropped = False
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._sends = settled_sends(self._loop)
        self._dead = False
        self._closed: asyncio.Future[tuple[int | None, str]] = self._loop.create_future()

    # -- picows' callbacks ------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._ws = transport
        self._socket = transport.underlying_transport
        interval, timeout = self._pings
        if interval is not None:
            self._liveness = Liveness(self._loop, interval, timeout, self._ping, self._drop_dead)
        if self._opened is not None:
            opened, self._opened = self._opened, None
            opened(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        liveness = self._liveness
        if liveness is not None:
            liveness.last_seen = _monotonic()
        kind = frame.msg_type
        sink = self._inbox.sink
        if kind is _TEXT and frame.fin and self._fragments is None and sink is not None:
            if self._reading:  # the usual message: whole, in one frame, with a sink to go to
                try:
                    sink(frame.get_payload_as_bytes())
                except Exception:  # a sink must not break picows' frame callback
                    logger.exception("failed to handle a message")
        elif kind is _TEXT or kind is _BINARY or kind is _CONTINUATION:
            if self._reading:
                self._take(frame, kind)
        elif kind is _PING:
            if not (transport.is_close_frame_sent or transport.is_disconnected):
                transport.send_pong(frame.get_payload_as_bytes())
        elif kind is _CLOSE:
            self._reading = False
            if not (transport.is_close_frame_sent or transport.is_disconnected):
                code = frame.get_close_code()  # echo it, as RFC 6455 suggests
                transport.send_close(WSCloseCode.OK if code is WSCloseCode.NO_INFO else code)
            transport.disconnect()
        # A pong counts as activity, and that is all.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._liveness is not None:
            self._liveness.stop()
        self._reading = False
        self._fragments = None
        if not self._closed.done():
            self._closed.set_result(self._outcome(transport))
        self._wake()
        if transport.is_client_side:
            # picows keeps a protocol error (a frame over the size limit, say) for
            # wait_disconnected to raise: take it, as the outcome tells it already.
            waiter = asyncio.ensure_future(transport.wait_disconnected())
            waiter.add_done_callback(_retrieve)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    # -- reading ----------------------------------------------------------------------

    def _take(self, frame: WSFrame, kind: WSMsgType) -> None:
        """Join fragments, hand whole messages to the sink (or keep them until one is set)."""
        fragments = self._fragments
        if fragments is None:
            if kind is _CONTINUATION:
                self.drop(WSCloseCode.PROTOCOL_ERROR.value, "unexpected continuation frame")
                return
            data = frame.get_payload_as_bytes()
            if not frame.fin:
                self._fragments = [data]
                self._size = len(data)
                return
        else:
            if kind is not _CONTINUATION:
                self.drop(WSCloseCode.PROTOCOL_ERROR.value, "expected a continuation frame")
                return
            self._size += frame.payload_size
            if self._max_size is not None and self._size > self._max_size:
                self._fragments = None
                self.drop(WSCloseCode.MESSAGE_TOO_BIG.value, "Message too big")
                return
            fragments.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            self._fragments = None
            data = b"".join(fragments)
        self._inbox.hand(data)

    def deliver_to(self, sink: Sink) -> None:
        """Hand every message to ``sink`` from now on, the ones kept so far first."""
        self._inbox.deliver_to(sink)

    # -- liveness ---------------------------------------------------------------------

    def _ping(self) -> None:
        ws = self._ws
        if ws is not None and not (ws.is_close_frame_sent or ws.is_disconnected):
            ws.send_ping(b"")

    def _drop_dead(self) -> None:
        """The peer did not answer a ping: send a close frame if it fits, drop the socket."""
        self._dead = True
        ws = self._ws
        if ws is None:
            return
        if not (ws.is_close_frame_sent or ws.is_disconnected):
            ws.send_close(WSCloseCode.INTERNAL_ERROR, DEAD_PEER_REASON.encode())
        ws.underlying_transport.abort()

    # -- writing ----------------------------------------------------------------------

    @property
    def ws(self) -> WSTransport | None:
        """picows' transport of the connection, None before the upgrade is done."""
        return self._ws

    @property
    def remote_address(self) -> Any:
        """The peer's address (``(host, port)``), or None before the upgrade."""
        ws = self._ws
        return None if ws is None else ws.underlying_transport.get_extra_info("peername")

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the network."""
        socket = self._socket
        return 0 if socket is None else socket.get_write_buffer_size()

    def write(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        """Write ``frame`` now, never waiting: whatever is buffered already, or only if
        no more than ``limit`` bytes are.

        Returns:
            Whether ``frame`` was written (False: over ``limit``).

        Raises:
            ConnectionClosedError: the connection is closing or closed.
        """
        ws = self._ws
        socket = self._socket
        if ws is None or socket is None or socket.is_closing() or ws.is_close_frame_sent:
            raise self._closed_error()
        if limit is not None and socket.get_write_buffer_size() > limit:
            return False
        ws.send(_TEXT, frame)
        return True

    def send(self, frame: bytes | bytearray, limit: int | None = None) -> Awaitable[bool]:
        """Write ``frame`` now (unless more than ``limit`` bytes are buffered); what it
        returns waits, when the write buffer is over its high-water mark, until it drains.

        Cancelling the wait leaves the connection usable: the frame is written already.

        Returns:
            To await: whether ``frame`` was written.

        Raises:
            ConnectionClosedError: the connection is closed (when called), or closed while
                waiting (when awaited).
        """
        if not self.write(frame, limit):
            return self._sends[0]
        if self._paused:
            return self._drain()
        return self._sends[1]

    async def _drain(self) -> bool:
        while self._paused and not self._closed.done():
            if self._drained is None:
                self._drained = self._loop.create_future()
            await asyncio.shield(self._drained)
        if self._closed.done():
            raise self._closed_error()
        return True

    def _wake(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # -- closing ----------------------------------------------------------------------

    def _outcome(self, ws: WSTransport | None) -> tuple[int | None, str]:
        """The close code and reason as :meth:`wait_closed` tells them."""
        if self._dead:
            return 1006, DEAD_PEER_REASON
        handshake = None if ws is None else ws.close_handshake
        if handshake is not None:
            if handshake.recv is not None:
                code = handshake.recv.code.value
                return (1005 if code == 0 else code), handshake.recv.reason or ""
            if handshake.sent is not None:  # we closed and the peer never answered
                return handshake.sent.code.value, handshake.sent.reason or ""
        return 1006, ""

    def _closed_error(self) -> ConnectionClosedError:
        code, reason = self._outcome(self._ws)
        if code == 1006 and not reason:
            reason = "connection lost"
        return ConnectionClosedError(code, reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason``; drop the connection if the closing handshake
        takes more than ``close_timeout`` (a peer that does not read never answers it).

        Idempotent; concurrent calls wait for the same close; cancelling it drops the
        connection. A connection dropped already (:meth:`drop`) hears no answer (it
        discards what it reads): once its close frame is out of the write buffer, it is
        dropped at once.
        """
        ws = self._ws
        if ws is None or self._closed.done():
            return
        if self._dropped and not ws.underlying_transport.get_write_buffer_size():
            ws.underlying_transport.abort()
            await asyncio.shield(self._closed)
            return
        if not (ws.is_close_frame_sent or ws.is_disconnected):
            ws.send_close(WSCloseCode(code), reason.encode())
        try:
            async with asyncio.timeout(self.close_timeout):
                await asyncio.shield(self._closed)
        except TimeoutError:
            ws.underlying_transport.abort()
        except BaseException:
            ws.underlying_transport.abort()
            raise
        await asyncio.shield(self._closed)  # picows reports the abort in the next iteration

    def drop(self, code: int, reason: str) -> None:
        """Send a close frame (behind what is buffered), serve nothing more, and close the
        socket as soon as the peer has closed its side, ``close_timeout`` later at the
        latest (:func:`~grestws.transports.lingering.linger`): for a peer that broke the
        rules, which may never read the close frame, let alone answer it."""
        self._reading = False
        self._dropped = True
        ws = self._ws
        if ws is None:
            return
        if not (ws.is_close_frame_sent or ws.is_disconnected):
            ws.send_close(WSCloseCode(code), reason.encode())
        linger(ws.underlying_transport, self.close_timeout)

    async def wait_closed(self) -> tuple[int | None, str]:
        """The close code and reason: the peer's; ours when we closed and the peer never
        answered (a dropped peer); 1006 when the connection was lost. Cancel-safe."""
        return await asyncio.shield(self._closed)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# -- the client side -----------------------------------------------------------------------


class _Opener:
    """Opens a dial's socket for picows (its ``socket_factory``), so that a cancelled dial
    can end it: picows does not close a connection whose upgrade it was waiting for."""

    __slots__ = ("handed",)

    def __init__(self) -> None:
        self.handed: socket.socket | None = None

    async def __call__(self, url: WSParsedURL) -> socket.socket:
        loop = asyncio.get_running_loop()
        error: OSError | None = None
        for family, kind, proto, _, address in await loop.getaddrinfo(
            url.host, url.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            # picows makes its transport of it without a pause: from here on the
            # transport owns it, and ending it is a shutdown, never a close.
            self.handed = sock
            return sock
        raise error or OSError(f"cannot resolve {url.host}")

    def abandon(self) -> None:
        """End the connection handed to picows, if any (its transport then closes it)."""
        sock = self.handed
        if sock is not None and sock.fileno() != -1:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class PicowsDialer:
    """Opens a client's socket with picows: pass it as ``grestws.connect(...,
    dialer=PicowsDialer())``.

    Args:
        max_message_size: Largest incoming message in bytes (a larger one closes the
            connection with 1009).
        ping_interval, ping_timeout: grestws's liveness watch (see :class:`PicowsTransport`).
        close_timeout: Seconds the closing handshake may take before the socket is dropped.
        options: Passed to ``picows.ws_connect`` (``ssl_context``, ...).

    Cancel-safe: cancelling a dial closes the socket it was opening (picows itself would
    leave it open until the upgrade answer came). One dialer may serve any number of
    clients and dials at once. picows has no permessage-deflate.
    """

    __slots__ = ("_max_size", "_options", "_settings")

    def __init__(
        self,
        *,
        max_message_size: int = 1 << 20,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 10.0,
        close_timeout: float = 2.0,
        **options: Any,
    ) -> None:
        self._settings: dict[str, Any] = {
            "max_message_size": max_message_size,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": close_timeout,
        }
        self._max_size = max_message_size
        self._options = options

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        """Open a socket to ``url`` with ``headers`` on the upgrade request.

        Raises:
            ConnectError: refused, an HTTP answer other than 101, or a broken upgrade.
        """
        settings = self._settings
        opener = _Opener()
        try:
            ws, listener = await ws_connect(
                lambda: PicowsTransport(**settings),
                url,
                extra_headers=dict(headers),
                socket_factory=opener,
                max_frame_size=self._max_size,
                enable_auto_ping=False,  # liveness is grestws's own: see grestws.liveness
                enable_auto_pong=False,  # a ping counts as activity: PicowsTransport answers it
                websocket_handshake_timeout=None,  # the client bounds the whole dial
                logger_name=_CLIENT_LOG,
                **self._options,
            )
        except WSInvalidStatusError as exc:
            status = "?" if exc.response is None else int(exc.response.status)
            raise ConnectError(f"{url}: HTTP {status}") from exc
        except (OSError, WSError) as exc:
            opener.abandon()
            raise ConnectError(f"{url}: {exc}") from exc
        except BaseException:
            opener.abandon()
            raise
        if not isinstance(listener, PicowsTransport):  # the connection ended during the upgrade
            ws.disconnect(graceful=False)
            raise ConnectError(f"{url}: the connection closed during the upgrade")
        return Dialed(listener, listener.remote_address)
