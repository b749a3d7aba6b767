"""The baseline: plain websockets, an echo server and hand-written clients.

The server echoes every frame on ``/echo`` as it came (``async for message in ws:
await ws.send(message)``), broadcasts ticks to the connections on ``/fanout`` with
``websockets.broadcast``, and answers stats requests on ``/control``. The client encodes
the same msgspec Structs as the other peers and decodes the echo back into them.
Compression is off on both sides; both accept messages of up to ``MAX_MESSAGE_SIZE``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

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
_tasks: set[asyncio.Task[None]] = set()

# -- server ---------------------------------------------------------------------------------

_listeners: set[ServerConnection] = set()
_fanout_decoder = msgspec.json.Decoder(FanoutRequest)
_stats_decoder = msgspec.json.Decoder(StatsRequest)


async def _handler(ws: ServerConnection) -> None:
    assert ws.request is not None
    path = ws.request.path
    if path == "/echo":
        async for message in ws:
            await ws.send(message)
    elif path == "/fanout":
        _listeners.add(ws)
        try:
            async for message in ws:
                task = asyncio.create_task(_push(_fanout_decoder.decode(message).count))
                _tasks.add(task)
                task.add_done_callback(_tasks.discard)
        finally:
            _listeners.discard(ws)
    elif path == "/control":
        async for message in ws:
            await ws.send(_encode(process_stats(_stats_decoder.decode(message).collect)), text=True)


async def _push(count: int) -> None:
    for seq in range(count):
        broadcast(_listeners, _encode(tick(seq)), text=True)
        await asyncio.sleep(0)


async def _serve() -> int:
    server = await serve(_handler, "127.0.0.1", 0, compression=None, max_size=MAX_MESSAGE_SIZE)
    return int(server.sockets[0].getsockname()[1])


# -- client ---------------------------------------------------------------------------------


class _Conn:
    __slots__ = ("reader", "ws")

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.reader: asyncio.Task[None] | None = None


_echo_decoder = msgspec.json.Decoder(Echo)
_catalog_decoder = msgspec.json.Decoder(Catalog)
_document_decoder = msgspec.json.Decoder(Document)
_tick_decoder = msgspec.json.Decoder(Tick)
_server_stats_decoder = msgspec.json.Decoder(ServerStats)


class WebsocketsPeer(Peer[_Conn]):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._control: ClientConnection | None = None

    async def _open(self, path: str) -> ClientConnection:
        return await ws_connect(
            f"ws://{self.host}:{self.port}{path}", compression=None, max_size=MAX_MESSAGE_SIZE
        )

    async def connect(self, on_tick: OnTick | None = None) -> _Conn:
        if on_tick is None:
            return _Conn(await self._open("/echo"))
        conn = _Conn(await self._open("/fanout"))
        conn.reader = asyncio.create_task(_read_ticks(conn.ws, on_tick))
        return conn

    def echo(self, conn: _Conn) -> Call[Echo]:
        return _caller(conn.ws, _echo_decoder)

    def echo_large(self, conn: _Conn) -> Call[Catalog]:
        return _caller(conn.ws, _catalog_decoder)

    def echo_document(self, conn: _Conn) -> Call[Document]:
        return _caller(conn.ws, _document_decoder)

    async def pipeline(self, conn: _Conn, count: int, depth: int) -> None:
        """``depth`` sends outstanding; replies are matched to requests in order."""
        ws = conn.ws
        window = asyncio.Semaphore(depth)

        async def send() -> None:
            for _ in range(count):
                await window.acquire()
                await ws.send(_encode(ECHO), text=True)

        async def receive() -> None:
            for _ in range(count):
                _echo_decoder.decode(await ws.recv(decode=False))
                window.release()

        await asyncio.gather(send(), receive())

    async def stats(self, conn: _Conn, collect: bool = False) -> ServerStats:
        if self._control is None:
            self._control = await self._open("/control")
        await self._control.send(_encode(StatsRequest(collect)), text=True)
        return _server_stats_decoder.decode(await self._control.recv(decode=False))

    async def start_fanout(self, conn: _Conn, count: int) -> None:
        await conn.ws.send(_encode(FanoutRequest(count)), text=True)

    async def close(self, conn: _Conn) -> None:
        await conn.ws.close()
        if conn.reader is not None:
            conn.reader.cancel()


def _caller(ws: ClientConnection, decoder: msgspec.json.Decoder[Any]) -> Call[Any]:
    async def call(request: Any) -> Any:
        await ws.send(_encode(request), text=True)
        return decoder.decode(await ws.recv(decode=False))

    return call


async def _read_ticks(ws: ClientConnection, on_tick: OnTick) -> None:
    try:
        while True:
            on_tick(_tick_decoder.decode(await ws.recv(decode=False)))
    except ConnectionClosed:
        pass


if __name__ == "__main__":
    main(_serve, WebsocketsPeer)
