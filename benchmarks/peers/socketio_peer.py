"""The incumbent: python-socketio's AsyncServer on aiohttp and its AsyncClient.

Calls are ``await sio.call("echo", data)`` answered by the handler's return value (an
ack); fan-out is ``await sio.emit("tick", data)`` to everyone. The client goes straight to
the WebSocket transport (no long-polling) and converts the same msgspec Structs as the
other peers to and from the dicts that socketio sends; the server handles dicts, as
socketio users write it. ``socketio_uvicorn_peer`` serves the same handlers as an ASGI
application on uvicorn. Both sides accept messages of up to ``MAX_MESSAGE_SIZE``
(``max_http_buffer_size`` on the server, aiohttp's ``max_msg_size`` on the client).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import socketio
from aiohttp import web

from benchmarks.common import process_stats
from benchmarks.payloads import MAX_MESSAGE_SIZE, Catalog, Document, Echo, ServerStats, Tick, tick
from benchmarks.shapes import Call, OnTick, Peer, main

_to_builtins = msgspec.to_builtins
_convert = msgspec.convert
_tasks: set[asyncio.Task[None]] = set()

# -- server ---------------------------------------------------------------------------------

_sio: socketio.AsyncServer | None = None


async def echo(sid: str, data: Any) -> Any:
    return data


async def echo_large(sid: str, data: Any) -> Any:
    return data


async def echo_document(sid: str, data: Any) -> Any:
    return data


async def stats(sid: str, data: Any) -> Any:
    return _to_builtins(process_stats(bool(data["collect"])))


async def fanout(sid: str, data: Any) -> bool:
    task = asyncio.create_task(_push(int(data["count"])))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return True


def bench_server(async_mode: str) -> socketio.AsyncServer:
    """The AsyncServer (for ``async_mode``: ``aiohttp``, ``asgi``) with the handlers."""
    global _sio
    sio = socketio.AsyncServer(async_mode=async_mode, max_http_buffer_size=MAX_MESSAGE_SIZE)
    for handler in (echo, echo_large, echo_document, stats, fanout):
        sio.on(handler.__name__, handler)
    _sio = sio
    return sio


async def _push(count: int) -> None:
    sio = _sio
    assert sio is not None
    for seq in range(count):
        await sio.emit("tick", _to_builtins(tick(seq)))


async def _serve() -> int:
    app = web.Application()
    bench_server("aiohttp").attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return int(runner.addresses[0][1])


# -- client ---------------------------------------------------------------------------------


class SocketioPeer(Peer[socketio.AsyncClient]):
    async def connect(self, on_tick: OnTick | None = None) -> socketio.AsyncClient:
        client = socketio.AsyncClient(
            reconnection=False,
            handle_sigint=False,
            websocket_extra_options={"max_msg_size": MAX_MESSAGE_SIZE},
        )
        if on_tick is not None:
            callback = on_tick

            async def tick_event(data: Any) -> None:
                callback(_convert(data, Tick))

            client.on("tick", tick_event)

        await client.connect(f"http://{self.host}:{self.port}", transports=["websocket"], wait_timeout=10)
        return client

    def echo(self, conn: socketio.AsyncClient) -> Call[Echo]:
        return _caller(conn, "echo", Echo)

    def echo_large(self, conn: socketio.AsyncClient) -> Call[Catalog]:
        return _caller(conn, "echo_large", Catalog)

    def echo_document(self, conn: socketio.AsyncClient) -> Call[Document]:
        return _caller(conn, "echo_document", Document)

    async def stats(self, conn: socketio.AsyncClient, collect: bool = False) -> ServerStats:
        return _convert(await conn.call("stats", {"collect": collect}), ServerStats)

    async def start_fanout(self, conn: socketio.AsyncClient, count: int) -> None:
        await conn.call("fanout", {"count": count})

    async def close(self, conn: socketio.AsyncClient) -> None:
        await conn.disconnect()


def _caller(client: socketio.AsyncClient, event: str, kind: type[Any]) -> Call[Any]:
    call = client.call

    async def request(req: Any) -> Any:
        return _convert(await call(event, _to_builtins(req)), kind)

    return request


if __name__ == "__main__":
    main(_serve, SocketioPeer)
