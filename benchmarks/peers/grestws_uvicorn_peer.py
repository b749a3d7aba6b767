"""grestws on uvicorn: the App of the ``grestws`` peer, served as an ASGI application.

The contract, the handlers, the limits and the client are those of
:mod:`benchmarks.peers.grestws_peer`; only the server differs: uvicorn, with the settings
of :mod:`benchmarks.peers._uvicorn`, runs the App (``App.__call__``, grestws's ASGI
transport) instead of ``grestws.serve()``. Fan-out is
``grestws.broadcast(app.connections.open(), BenchClient.tick, msg)``, which reaches each
client through the ASGI ``send`` of its connection.
"""

from __future__ import annotations

from benchmarks.peers._uvicorn import serve_asgi
from benchmarks.peers.grestws_peer import GrestwsPeer, bench_app, check_origin, push_to
from benchmarks.shapes import main


async def _serve() -> int:
    app = bench_app()
    push_to(app.connections.open)
    return await serve_asgi(app)


if __name__ == "__main__":
    check_origin()
    main(_serve, GrestwsPeer)
