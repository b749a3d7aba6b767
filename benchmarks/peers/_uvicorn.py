"""Serving an ASGI application with uvicorn inside a peer's server process.

Both uvicorn peers (``grestws-uvicorn``, ``socketio-uvicorn``) run their application with
the same settings, those of ``uvicorn module:app`` except for what the benchmark has to pin:

- ``ws="websockets-sansio"``: uvicorn's WebSocket protocol on the Sans-I/O core of the
  websockets library (what ``auto`` picks when websockets is installed, as here);
  ``http="h11"``, which only parses the upgrade request (``auto`` would pick httptools
  when it happens to be installed);
- ``ws_per_message_deflate=False``: compression off, as in every other peer (no client
  offers it either);
- ``lifespan="on"``: the application's startup runs before the port is printed;
- ``log_level="warning"``, ``access_log=False``: no line per connection;
- everything else at uvicorn's defaults, among them keepalive pings every 20 s (the
  websockets library's default too) and a 16 MiB frame cap;
- the event loop is the process's own (``--loop``), which ``loop`` records.

The server runs as ``uvicorn.Server.serve()`` does under ``uvicorn.run()``, signal handling
included: the orchestrator's SIGTERM shuts it down gracefully, then ends the process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

__all__ = ("SETTINGS", "serve_asgi")

SETTINGS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "http": "h11",
    "ws_per_message_deflate": False,
    "lifespan": "on",
    "log_level": "warning",
    "access_log": False,
}
"""The uvicorn settings of both uvicorn peers (host, port and loop are added)."""

_servers: set[asyncio.Task[None]] = set()


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


async def serve_asgi(app: Any) -> int:
    """Serve ``app`` with uvicorn on 127.0.0.1 and a free port; return the port once it
    listens.

    Raises:
        RuntimeError: uvicorn stopped before it listened.
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, loop=_loop_name(), **SETTINGS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    _servers.add(task)
    while not server.started:
        if task.done():
            task.result()  # its exception, if it failed
            raise RuntimeError("uvicorn stopped before it listened")
        await asyncio.sleep(0.01)
    sockets = server.servers[0].sockets
    return int(sockets[0].getsockname()[1])
