"""python-socketio on uvicorn: the handlers of the ``socketio`` peer, served as an ASGI
application.

The handlers and the client are those of :mod:`benchmarks.peers.socketio_peer`; the
server is ``socketio.AsyncServer(async_mode="asgi")`` wrapped in ``socketio.ASGIApp`` and
run by uvicorn with the settings of :mod:`benchmarks.peers._uvicorn` (the same as for
``grestws-uvicorn``), instead of aiohttp. Fan-out is ``await sio.emit("tick", data)`` to
everyone.
"""

from __future__ import annotations

import socketio

from benchmarks.peers._uvicorn import serve_asgi
from benchmarks.peers.socketio_peer import SocketioPeer, bench_server
from benchmarks.shapes import main


async def _serve() -> int:
    return await serve_asgi(socketio.ASGIApp(bench_server("asgi")))


if __name__ == "__main__":
    main(_serve, SocketioPeer)
