"""The websockets library behind the :class:`~grestws.transports.Transport` interface.

Whole messages go from websockets' protocol callback straight to the session's sink, with
no task in between: a response wakes its caller in the next loop iteration, as a plain
``await ws.recv()`` would. This is the one place where websockets' exceptions (and the
OS errors under them) become grestws's.

Liveness is grestws's own (:class:`~grestws.liveness.Liveness`), not websockets'
keepalive: any frame counts as activity, and a silent peer is dropped after ping interval
+ ping timeout without waiting for a closing handshake it will never answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from time import monotonic as _monotonic
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.connection import Connection as WebSocket
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import DATA_OPCODES, CloseCode, Frame, Opcode
from websockets.protocol import CLOSED, OPEN, SERVER, Event

from grestws.exceptions import ConnectError, ConnectionClosedError
from grestws.liveness import Liveness
from grestws.protocol.frames import DEAD_PEER_REASON
from grestws.transports import Dialed, Inbox, Sink, settled_sends
from grestws.transports.lingering import linger

__all__ = (
    "Messages",
    "PushClientConnection",
    "PushServerConnection",
    "WebsocketsDialer",
    "WebsocketsTransport",
)

logger = logging.getLogger("grestws")

_TEXT = Opcode.TEXT

_SHARED_UP_TO = 64 * 1024
"""The largest frame whose wire form is kept for the next connection (see :func:`_wire`)."""
_shared: tuple[bytes, bytes] = (b"", b"")


def _wire(frame: bytes) -> bytes:
    """``frame`` as a server's unmasked text frame with no extension: the same bytes on
    every such connection. The last one is kept (up to :data:`_SHARED_UP_TO` bytes), so a
    frame broadcast to many connections is serialized once."""
    global _shared
    shared = _shared
    if shared[0] is frame:
        return shared[1]
    wire = Frame(_TEXT, frame).serialize(mask=False)
    if len(frame) <= _SHARED_UP_TO:
        _shared = (frame, wire)
    return wire


class Messages(Inbox):
    """Joins fragmented messages and hands every whole message to the sink, in order.

    Messages that arrive before a sink is set are kept and handed over when it is set.

    Attributes:
        fragments: The parts of a fragmented message so far, or None between messages.
    """

    __slots__ = ("fragments",)

    def __init__(self) -> None:
        super().__init__()
        self.fragments: list[bytes | bytearray] | None = None

    def take(self, frame: Frame) -> bool:
        """Handle a data frame; False for any other frame (left to websockets)."""
        if frame.opcode not in DATA_OPCODES:
            return False
        data = frame.data  # bytes, or a bytearray that websockets made for this frame alone
        if isinstance(data, memoryview):
            data = data.tobytes()
        if self.fragments is not None:
            self.fragments.append(data)
            if not frame.fin:
                return True
            data = b"".join(self.fragments)
            self.fragments = None
        elif not frame.fin:
            self.fragments = [data]
            return True
        self.hand(data)
        return True


class _PushMessages(WebSocket):
    """Hands whole messages to :attr:`messages` instead of websockets' own queue, and tells
    :attr:`liveness` of every frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.messages = Messages()
        self.liveness: Liveness | None = None

    def process_event(self, event: Event) -> None:
        liveness = self.liveness
        if liveness is not None:
            liveness.last_seen = _monotonic()
        if type(event) is Frame:
            messages = self.messages
            sink = messages.sink
            data = event.data
            if event.fin and event.opcode is _TEXT and sink is not None and messages.fragments is None:
                # The usual message: whole, in one frame, with a sink to go to.
                try:
                    sink(data if type(data) is not memoryview else data.tobytes())
                except Exception:  # a sink must not break websockets' callback
                    logger.exception("failed to handle a message")
                return
            if messages.take(event):
                return
        super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.liveness is not None:
            self.liveness.stop()
        super().connection_lost(exc)


class PushServerConnection(_PushMessages, ServerConnection):
    """A websockets server connection whose messages go to :attr:`messages`."""


class PushClientConnection(_PushMessages, ClientConnection):
    """A websockets client connection whose messages go to :attr:`messages`."""


class WebsocketsTransport:
    """A websockets connection (either side) as a grestws transport.

    Args:
        ws: The connection, made with :class:`PushServerConnection` or
            :class:`PushClientConnection`.
        ping_interval: Seconds of silence before a ping (None: no liveness watch).
        ping_timeout: Seconds a pinged peer has to send anything before it is dropped.
        close_timeout: Seconds the closing handshake may take before the connection is
            dropped.
    """

    __slots__ = (
        "_dead",
        "_dropped",
        "_plain",
        "_protocol",
        "_sends",
        "_sent",
        "_socket",
        "close_timeout",
        "messages",
        "ws",
    )

    def __init__(
        self,
        ws: _PushMessages,
        *,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        close_timeout: float = 2.0,
    ) -> None:
        self.ws: WebSocket = ws
        self._protocol = ws.protocol
        self._socket = ws.transport  # set once the connection is made, as it is here
        self.messages = ws.messages
        self.close_timeout = close_timeout
        self._dead = False
        self._dropped = False
        self._sent: tuple[int, str] | None = None
        self._sends = settled_sends(ws.loop)
        # A server's frames with no extension are the same bytes on every connection.
        self._plain = ws.protocol.side is SERVER and not ws.protocol.extensions
        if ping_interval is not None and ws.protocol.state is OPEN:
            ws.liveness = Liveness(ws.loop, ping_interval, ping_timeout, self._ping, self._drop_dead)

    def _ping(self) -> None:
        ws = self.ws
        if ws.protocol.state is OPEN:
            ws.protocol.send_ping(b"")
            ws.send_data()

    def _drop_dead(self) -> None:
        """The peer did not answer a ping: send a close frame if it fits, drop the socket."""
        self._dead = True
        ws = self.ws
        if ws.protocol.state is OPEN:
            ws.protocol.fail(CloseCode.INTERNAL_ERROR, DEAD_PEER_REASON)
            ws.send_data()
        ws.transport.abort()

    @property
    def remote_address(self) -> Any:
        return self.ws.remote_address

    def deliver_to(self, sink: Sink) -> None:
        self.messages.deliver_to(sink)

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the network."""
        return self._socket.get_write_buffer_size()

    def write(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        """Write ``frame`` now, never waiting: whatever is buffered already, or only if
        no more than ``limit`` bytes are.

        Returns:
            Whether ``frame`` was written (False: over ``limit``).

        Raises:
            ConnectionClosedError: the connection is closing or closed.
        """
        protocol = self._protocol
        socket = self._socket
        if protocol.state is not OPEN or socket.is_closing():
            raise self._closed()
        if limit is not None and socket.get_write_buffer_size() > limit:
            return False
        # grestws never sends fragmented messages, so nothing can be interleaved with this
        # frame; websockets' protocol keeps no state of the data frames it sends.
        if self._plain and type(frame) is bytes and not protocol.debug:
            socket.write(_wire(frame))
            return True
        protocol.send_text(frame)  # what websockets.broadcast does for each connection
        self.ws.send_data()
        return True

    def send(self, frame: bytes | bytearray, limit: int | None = None) -> Awaitable[bool]:
        """Write ``frame`` now (unless more than ``limit`` bytes are buffered); what it
        returns waits, when the write buffer is full, until it drains.

        Cancelling the wait leaves the connection usable: the frame is written already.

        Returns:
            To await: whether ``frame`` was written.

        Raises:
            ConnectionClosedError: the connection is closed (when called), or closed while
                waiting (when awaited).
        """
        protocol = self._protocol
        socket = self._socket
        if protocol.state is not OPEN or socket.is_closing():
            raise self._closed()
        if limit is not None and socket.get_write_buffer_size() > limit:
            return self._sends[0]
        protocol.send_text(frame)  # as write() does, without the extra call on the hot path
        ws = self.ws
        ws.send_data()
        if ws.paused:
            return self._drain()
        return self._sends[1]

    async def _drain(self) -> bool:
        try:
            await self.ws.drain()
        except (ConnectionClosed, OSError) as exc:
            raise self._closed() from exc
        return True

    def _closed(self) -> ConnectionClosedError:
        ws = self.ws
        if self._dead:
            return ConnectionClosedError(1006, DEAD_PEER_REASON)
        frame = ws.protocol.close_rcvd or ws.protocol.close_sent
        if frame is None:
            return ConnectionClosedError(1006, "connection lost")
        return ConnectionClosedError(frame.code, frame.reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason``; drop the connection if the closing handshake
        takes more than ``close_timeout`` (a peer that does not read never answers it).

        Idempotent; cancelling it drops the connection. A connection dropped already
        (:meth:`drop`) hears no answer (it discards what it reads): once its close frame
        is out of the write buffer, it is dropped at once.
        """
        ws = self.ws
        if ws.connection_lost_waiter.done():
            # Closed already. Not through websockets' close(), which aborts the socket even
            # then: asyncio's selector transport, once it closed by draining its buffer,
            # fails an abort with AttributeError.
            return
        if self._dropped and not ws.transport.get_write_buffer_size():
            ws.transport.abort()
            await ws.wait_closed()
            return
        if self._sent is None and ws.protocol.state is OPEN:
            self._sent = (code, reason)
        try:
            async with asyncio.timeout(self.close_timeout):
                await ws.close(code, reason)
        except TimeoutError:
            pass
        except BaseException:
            ws.transport.abort()
            raise
        if ws.protocol.state is not CLOSED:
            ws.transport.abort()
            await ws.wait_closed()

    def drop(self, code: int, reason: str) -> None:
        """Send a close frame (behind what is buffered), serve nothing more, and close the
        socket as soon as the peer has closed its side, ``close_timeout`` later at the
        latest (:func:`~grestws.transports.lingering.linger`): for a peer that broke the
        rules, which may never read the close frame, let alone answer it."""
        ws = self.ws
        if ws.protocol.state is OPEN:
            self._sent = (code, reason)
            ws.protocol.send_close(code, reason)
            ws.send_data()
        self._dropped = True
        linger(ws.transport, self.close_timeout)

    async def wait_closed(self) -> tuple[int | None, str]:
        """The close code and reason: the peer's; ours when we closed and the peer never
        answered (a dropped peer); 1006 when the connection was lost."""
        await self.ws.wait_closed()  # shields websockets' own future: safe to cancel
        if self._dead:
            return 1006, DEAD_PEER_REASON
        if self.ws.protocol.close_rcvd is None and self._sent is not None:
            return self._sent
        return self.ws.close_code, self.ws.close_reason or ""


class WebsocketsDialer:
    """Opens a client's socket with websockets: the :class:`~grestws.transports.Dialer`
    a :class:`~grestws.client.Client` uses unless given another.

    Args:
        max_message_size: Largest incoming frame in bytes.
        ping_interval, ping_timeout: grestws's liveness watch (see :class:`WebsocketsTransport`).
        compression: Offer permessage-deflate.

    Cancel-safe: cancelling a dial closes the socket it was opening.
    """

    __slots__ = ("_liveness", "_options")

    def __init__(
        self,
        *,
        max_message_size: int = 1 << 20,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 10.0,
        compression: bool = False,
    ) -> None:
        self._liveness = (ping_interval, ping_timeout)
        self._options: dict[str, Any] = {
            "max_size": max_message_size,
            "ping_interval": None,  # liveness is grestws's own: see grestws.liveness
            "compression": "deflate" if compression else None,
            "create_connection": PushClientConnection,
        }

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        """Open a socket to ``url`` with ``headers`` on the upgrade request.

        Raises:
            ConnectError: refused, an HTTP answer other than 101, or a broken upgrade.
        """
        try:
            ws = await ws_connect(url, additional_headers=dict(headers), **self._options)
        except InvalidStatus as exc:
            raise ConnectError(f"{url}: HTTP {exc.response.status_code}") from exc
        except (OSError, InvalidHandshake) as exc:
            raise ConnectError(f"{url}: {exc}") from exc
        assert isinstance(ws, PushClientConnection)  # made by create_connection
        ping_interval, ping_timeout = self._liveness
        transport = WebsocketsTransport(ws, ping_interval=ping_interval, ping_timeout=ping_timeout)
        return Dialed(transport, ws.remote_address)
