"""python-socketio in the ``cluster`` shape: rooms shared through ``AsyncRedisManager``.

Each server is the ``socketio`` peer's server (``AsyncServer`` on aiohttp) with
``client_manager=socketio.AsyncRedisManager(url)`` (the default manager alone). A
subscriber calls ``join``, whose handler does ``await sio.enter_room(sid, "bench")``; the
publisher calls ``publish``, whose handler does ``await sio.emit("tick", data,
room="bench")``, which python-socketio writes to this server's members and publishes to
Redis for the others. The client is the ``socketio`` peer's (the WebSocket transport, the
same Structs converted to dicts and back). See :mod:`benchmarks.cluster_peer` for the roles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import socketio
from aiohttp import web

from benchmarks.cluster_peer import ROOM, ClusterPeer, OnTick, main
from benchmarks.payloads import Tick

_to_builtins = msgspec.to_builtins
_convert = msgspec.convert

# -- server ---------------------------------------------------------------------------------


def cluster_server(redis_url: str | None) -> socketio.AsyncServer:
    """The AsyncServer of one server, through Redis when given a URL."""
    options: dict[str, Any] = {}
    if redis_url is not None:
        options["client_manager"] = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="aiohttp", **options)

    async def join(sid: str, data: Any) -> bool:
        await sio.enter_room(sid, data["room"])
        return True

    async def publish(sid: str, data: Any) -> bool:
        await sio.emit("tick", data, room=ROOM)
        return True

    sio.on("join", join)
    sio.on("publish", publish)
    return sio


async def _serve(redis_url: str | None) -> tuple[int, Callable[[], dict[str, Any]]]:
    app = web.Application()
    sio = cluster_server(redis_url)
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()

    def counts() -> dict[str, Any]:
        try:
            members = len(list(sio.manager.get_participants("/", ROOM)))
        except (KeyError, TypeError):
            members = 0
        return {"room": members, "manager": type(sio.manager).__name__}

    return int(runner.addresses[0][1]), counts


# -- client ---------------------------------------------------------------------------------


class SocketioCluster(ClusterPeer[socketio.AsyncClient]):
    async def connect(self, port: int, on_tick: OnTick | None = None) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        if on_tick is not None:
            callback = on_tick

            async def tick_event(data: Any) -> None:
                callback(_convert(data, Tick))

            client.on("tick", tick_event)
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
        return client

    async def join(self, conn: socketio.AsyncClient) -> None:
        await conn.call("join", {"room": ROOM})

    async def publish(self, conn: socketio.AsyncClient, msg: Tick) -> None:
        await conn.call("publish", _to_builtins(msg))

    async def close(self, conn: socketio.AsyncClient) -> None:
        await conn.disconnect()


if __name__ == "__main__":
    main(_serve, SocketioCluster)
