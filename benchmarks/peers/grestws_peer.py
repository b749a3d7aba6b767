"""grestws as users write it: a typed contract, a handler class, the typed client proxy.

The server validates every request into its Struct and encodes the reply; the client calls
``await client.outgoing.echo(req)`` and gets a validated Struct back. Fan-out is
``grestws.broadcast(server.connections, BenchClient.tick, msg)``. The server is
``grestws.serve()`` (the websockets transport); ``grestws_uvicorn_peer`` serves the same
App with uvicorn.

The same module runs the ``grestws@base`` peer (``--baseline``) against an earlier grestws,
so it uses only what both have: per-connection limits (``grestws.Limits``) and the largest
message (``Limits.max_message_size``, the client's ``max_message_size``) are set only where
they exist; without them the 1 MiB default still holds the 1 MB document of the payload
shapes with its envelope.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import grestws
from benchmarks.common import process_stats
from benchmarks.payloads import (
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

# -- the contract -------------------------------------------------------------------------


class BenchServer(Protocol):
    """What the benchmark client calls on the server."""

    @grestws.request
    async def echo(self, req: Echo) -> Echo:
        """Answer with the request."""
        ...

    @grestws.request
    async def echo_large(self, req: Catalog) -> Catalog:
        """Answer with the (large) request."""
        ...

    @grestws.request
    async def echo_document(self, req: Document) -> Document:
        """Answer with the document (100 B to 1 MB)."""
        ...

    @grestws.request
    async def stats(self, req: StatsRequest) -> ServerStats:
        """The server's RSS and CPU time."""
        ...

    @grestws.request
    async def fanout(self, req: FanoutRequest) -> None:
        """Start pushing ``req.count`` ticks to every connected client."""
        ...


class BenchClient(Protocol):
    """What the server calls on the benchmark clients."""

    @grestws.notify
    async def tick(self, msg: Tick) -> None:
        """One fan-out message."""
        ...


BenchApi = grestws.SocketContract("Bench", client_to_server=BenchServer, server_to_client=BenchClient).at(
    "/bench"
)

# -- server ---------------------------------------------------------------------------------

_connections: Callable[[], Iterable[grestws.ServerConnection[BenchClient]]] | None = None
"""The open connections to push to, as the server serving the App knows them."""
_tasks: set[asyncio.Task[None]] = set()


class BenchHandler(BenchServer):
    def __init__(self, conn: grestws.ServerConnection[BenchClient]) -> None:
        self.conn = conn

    async def echo(self, req: Echo) -> Echo:
        return req

    async def echo_large(self, req: Catalog) -> Catalog:
        return req

    async def echo_document(self, req: Document) -> Document:
        return req

    async def stats(self, req: StatsRequest) -> ServerStats:
        return process_stats(req.collect)

    async def fanout(self, req: FanoutRequest) -> None:
        task = asyncio.create_task(_push(req.count))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


async def _push(count: int) -> None:
    assert _connections is not None
    connections = _connections
    for seq in range(count):
        grestws.broadcast(connections(), BenchClient.tick, tick(seq))
        await asyncio.sleep(0)


def _app() -> grestws.App:
    """The App with the default limits, except that the rate limits never refuse and
    messages may be as large as :data:`~benchmarks.payloads.MAX_MESSAGE_SIZE`.

    The default per-connection rates (about 1,000 frames/s) would throttle every shape, so
    they are set far beyond any benchmark's rate: the checks still run, and cost what they
    cost, but never refuse. A grestws without ``Limits`` gets a plain ``App()``.
    """
    limits, rate = getattr(grestws, "Limits", None), getattr(grestws, "Rate", None)
    if limits is None or rate is None:
        return grestws.App()
    unthrottled = rate(1e9)
    settings: dict[str, Any] = {"rate": unthrottled, "identity_rate": unthrottled}
    if "max_message_size" in getattr(limits, "__struct_fields__", ()):
        settings["max_message_size"] = MAX_MESSAGE_SIZE
    options: dict[str, Any] = {"limits": limits(**settings)}
    return grestws.App(**options)


def push_to(connections: Callable[[], Iterable[grestws.ServerConnection[BenchClient]]]) -> None:
    """Make fan-out push to ``connections()``, called once per message."""
    global _connections
    _connections = connections


def bench_app() -> grestws.App:
    """The App of both grestws peers: :func:`_app` serving ``BenchApi``."""
    app = _app()
    app.add(BenchApi, BenchHandler)
    return app


async def serve_app(app: grestws.App, **options: Any) -> int:
    """Serve ``app`` with ``grestws.serve()`` on 127.0.0.1, pushing fan-out to its
    connections; the port. ``options`` go to ``grestws.serve()`` (``transport=...``)."""
    server = await grestws.serve(app, "127.0.0.1", 0, **options)
    push_to(lambda: server.connections)
    return server.port


async def _serve() -> int:
    return await serve_app(bench_app())


# -- client ---------------------------------------------------------------------------------

Client = grestws.Client[BenchServer, BenchClient]


class _Ticks(BenchClient):
    def __init__(self, on_tick: OnTick | None) -> None:
        self.on_tick = on_tick

    async def tick(self, msg: Tick) -> None:
        if self.on_tick is not None:
            self.on_tick(msg)


def client_options() -> dict[str, Any]:
    """The options of every ``grestws.connect()``: ``max_message_size`` where the client
    takes it (an earlier grestws may not)."""
    if "max_message_size" in inspect.signature(grestws.Client).parameters:
        return {"max_message_size": MAX_MESSAGE_SIZE}
    return {}


class GrestwsPeer(Peer[Client]):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.options = client_options()
        """What :meth:`connect` passes to ``grestws.connect()`` besides the handlers."""

    async def connect(self, on_tick: OnTick | None = None) -> Client:
        return await grestws.connect(
            f"ws://{self.host}:{self.port}", BenchApi, handlers=_Ticks(on_tick), **self.options
        )

    def echo(self, conn: Client) -> Call[Echo]:
        return conn.outgoing.echo

    def echo_large(self, conn: Client) -> Call[Catalog]:
        return conn.outgoing.echo_large

    def echo_document(self, conn: Client) -> Call[Document]:
        return conn.outgoing.echo_document

    async def stats(self, conn: Client, collect: bool = False) -> ServerStats:
        return await conn.outgoing.stats(StatsRequest(collect))

    async def start_fanout(self, conn: Client, count: int) -> None:
        await conn.outgoing.fanout(FanoutRequest(count))

    async def close(self, conn: Client) -> None:
        await conn.close()


def check_origin() -> None:
    """Exit unless ``grestws`` came from ``$BENCH_GRESTWS_DIR`` (when set, as ``--baseline`` does)."""
    expected = os.environ.get("BENCH_GRESTWS_DIR")
    found = Path(grestws.__file__).resolve().parent
    if expected and found != Path(expected).resolve():
        sys.exit(f"grestws_peer: imported grestws from {found}, expected {expected}")


if __name__ == "__main__":
    check_origin()
    main(_serve, GrestwsPeer)
