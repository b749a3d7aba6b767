"""A second bare transport: plain picows, an echo server and hand-written clients.

Written the way picows is meant to be used: a :class:`picows.WSListener` subclass per
endpoint whose ``on_ws_frame`` callback does the work, no task or queue per message. The
server echoes every frame on ``/echo`` as it came, sends ticks to every connection on
``/fanout`` (one ``transport.send`` per connection, as picows's broadcast example does),
and answers stats requests on ``/control``. The client encodes the same msgspec Structs as
the other peers and decodes each reply straight from the frame's buffer, inside the
callback, into the future of the call waiting for it. Neither side fragments a message, so
one frame is one message. Both sides accept frames of up to ``MAX_MESSAGE_SIZE``; the close
handshake is answered by hand, as picows leaves it to the listener.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import msgspec
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_connect,  # pyright: ignore[reportUnknownVariableType]  (picows leaves some arguments untyped)
    ws_create_server,  # pyright: ignore[reportUnknownVariableType]
)

from benchmarks.common import process_stats
from benchmarks.payloads import (
    ECHO,
    MAX_MESSAGE_SIZE,
    Catalog,
    Document,
    Echo,
    FanoutRequest,
    ServerStats,
    StatsRequest,
    Tick,
    tick,
)
from benchmarks.shapes import Call, OnTick, Peer, main

_encode = msgspec.json.encode
_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE
_tasks: set[asyncio.Task[None]] = set()


def _closing(transport: WSTransport, frame: WSFrame) -> bool:
    """Answer a CLOSE frame (and disconnect); whether ``frame`` was one."""
    if frame.msg_type != _CLOSE:
        return False
    transport.send_close(frame.get_close_code(), frame.get_close_message())
    transport.disconnect()
    return True


# -- server ---------------------------------------------------------------------------------

_listeners: set[WSTransport] = set()
_fanout_decoder = msgspec.json.Decoder(FanoutRequest)
_stats_decoder = msgspec.json.Decoder(StatsRequest)


class _EchoServer(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if not _closing(transport, frame):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


class _FanoutServer(WSListener):
    def on_ws_connected(self, transport: WSTransport) -> None:
        _listeners.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        _listeners.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if _closing(transport, frame):
            return
        task = asyncio.create_task(_push(_fanout_decoder.decode(frame.get_payload_as_memoryview()).count))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


class _ControlServer(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if not _closing(transport, frame):
            request = _stats_decoder.decode(frame.get_payload_as_memoryview())
            transport.send(_TEXT, _encode(process_stats(request.collect)))


_ROUTES: dict[bytes, type[WSListener]] = {
    b"/echo": _EchoServer,
    b"/fanout": _FanoutServer,
    b"/control": _ControlServer,
}


def _route(request: WSUpgradeRequest) -> WSListener | None:
    """The listener for the request's path; None answers 404."""
    listener = _ROUTES.get(request.path)
    return None if listener is None else listener()


async def _push(count: int) -> None:
    for seq in range(count):
        message = _encode(tick(seq))
        for transport in tuple(_listeners):
            transport.send(_TEXT, message)  # a no-op once the connection is closing
        await asyncio.sleep(0)


async def _serve() -> int:
    server = await ws_create_server(_route, "127.0.0.1", 0, max_frame_size=MAX_MESSAGE_SIZE)
    return int(server.sockets[0].getsockname()[1])


# -- client ---------------------------------------------------------------------------------


class _Replies(WSListener):
    """The client side of ``/echo`` and ``/control``: each frame resolves the oldest waiting
    call with the frame decoded by that call's decoder (replies come in order)."""

    def __init__(self) -> None:
        self.waiting: deque[tuple[asyncio.Future[Any], msgspec.json.Decoder[Any]]] = deque()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if _closing(transport, frame):
            return
        future, decoder = self.waiting.popleft()
        if not future.done():
            future.set_result(decoder.decode(frame.get_payload_as_memoryview()))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for future, _ in self.waiting:
            if not future.done():
                future.set_exception(ConnectionError("picows: disconnected"))
        self.waiting.clear()


class _Pipeline(WSListener):
    """The client side of one pipelined burst: keeps ``depth`` echoes outstanding, sending
    the next one from the callback of each reply."""

    def __init__(self, transport: WSTransport, count: int, depth: int) -> None:
        self.transport = transport
        self.remaining = count
        self.outstanding = 0
        self.done = asyncio.get_running_loop().create_future()
        self.request = _encode(ECHO)
        for _ in range(min(depth, count)):
            self._send()

    def _send(self) -> None:
        self.remaining -= 1
        self.outstanding += 1
        self.transport.send(_TEXT, self.request)

    def reply(self, frame: WSFrame) -> None:
        _echo_decoder.decode(frame.get_payload_as_memoryview())
        self.outstanding -= 1
        if self.remaining > 0:
            self._send()
        elif self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)


class _Echoes(_Replies):
    """``/echo``: replies to single calls, or to a pipelined burst while one runs."""

    def __init__(self) -> None:
        super().__init__()
        self.pipeline: _Pipeline | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self.pipeline is not None and frame.msg_type == _TEXT:
            self.pipeline.reply(frame)
        else:
            super().on_ws_frame(transport, frame)


class _Ticks(WSListener):
    """``/fanout``: every tick decoded and handed to ``on_tick`` in the callback."""

    def __init__(self, on_tick: OnTick) -> None:
        self.on_tick = on_tick

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if not _closing(transport, frame):
            self.on_tick(_tick_decoder.decode(frame.get_payload_as_memoryview()))


class _Conn:
    __slots__ = ("listener", "transport")

    def __init__(self, transport: WSTransport, listener: WSListener) -> None:
        self.transport = transport
        self.listener = listener


_echo_decoder = msgspec.json.Decoder(Echo)
_catalog_decoder = msgspec.json.Decoder(Catalog)
_document_decoder = msgspec.json.Decoder(Document)
_tick_decoder = msgspec.json.Decoder(Tick)
_server_stats_decoder = msgspec.json.Decoder(ServerStats)


class PicowsPeer(Peer[_Conn]):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._control: _Conn | None = None

    async def _open(self, path: str, listener: WSListener) -> _Conn:
        transport, _ = await ws_connect(
            lambda: listener, f"ws://{self.host}:{self.port}{path}", max_frame_size=MAX_MESSAGE_SIZE
        )
        return _Conn(transport, listener)

    async def connect(self, on_tick: OnTick | None = None) -> _Conn:
        if on_tick is None:
            return await self._open("/echo", _Echoes())
        return await self._open("/fanout", _Ticks(on_tick))

    def echo(self, conn: _Conn) -> Call[Echo]:
        return _caller(conn, _echo_decoder)

    def echo_large(self, conn: _Conn) -> Call[Catalog]:
        return _caller(conn, _catalog_decoder)

    def echo_document(self, conn: _Conn) -> Call[Document]:
        return _caller(conn, _document_decoder)

    async def pipeline(self, conn: _Conn, count: int, depth: int) -> None:
        """``depth`` echoes outstanding, the next one sent as each reply arrives."""
        listener = conn.listener
        assert isinstance(listener, _Echoes)
        if count <= 0:
            return
        listener.pipeline = burst = _Pipeline(conn.transport, count, depth)
        try:
            await burst.done
        finally:
            listener.pipeline = None

    async def stats(self, conn: _Conn, collect: bool = False) -> ServerStats:
        if self._control is None:
            self._control = await self._open("/control", _Replies())
        call: Call[Any] = _caller(self._control, _server_stats_decoder)
        reply: ServerStats = await call(StatsRequest(collect))
        return reply

    async def start_fanout(self, conn: _Conn, count: int) -> None:
        conn.transport.send(_TEXT, _encode(FanoutRequest(count)))

    async def close(self, conn: _Conn) -> None:
        conn.transport.send_close(WSCloseCode.OK)
        await conn.transport.wait_disconnected()


def _caller(conn: _Conn, decoder: msgspec.json.Decoder[Any]) -> Call[Any]:
    transport = conn.transport
    listener = conn.listener
    assert isinstance(listener, _Replies)
    waiting = listener.waiting
    loop = asyncio.get_running_loop()

    async def call(request: Any) -> Any:
        future: asyncio.Future[Any] = loop.create_future()
        waiting.append((future, decoder))
        transport.send(_TEXT, _encode(request))
        return await future

    return call


if __name__ == "__main__":
    main(_serve, PicowsPeer)
