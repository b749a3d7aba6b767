"""grestws in the ``cluster`` shape: rooms, pushed to on every process through Redis.

Each server is ``grestws.App(broker=RedisBroker(url))`` (a plain ``App()`` alone) served
by ``grestws.serve()``, with the limits of the ``grestws`` peer (the rate limits out of
reach). A subscriber calls ``join``, whose handler does ``app.rooms.join(conn, "bench")``;
the publisher calls ``publish(tick)``, whose handler does ``await
app.rooms.send("bench", BenchClient.tick, tick)``: written to this server's members, and
handed once to the other servers through Redis, which write it to theirs. The contract is
named ``Bench`` like the ``grestws`` peer's, so a pushed frame is byte for byte the one of
the ``fanout`` shape. See :mod:`benchmarks.cluster_peer` for the roles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

import grestws
from benchmarks.cluster_peer import ROOM, ClusterPeer, OnTick, main
from benchmarks.payloads import Tick
from benchmarks.peers.grestws_peer import BenchClient


class JoinRequest(msgspec.Struct):
    room: str


class ClusterServer(Protocol):
    """What the cluster shape's clients call."""

    @grestws.request
    async def join(self, req: JoinRequest) -> None:
        """Put the calling connection in ``req.room``."""
        ...

    @grestws.request
    async def publish(self, msg: Tick) -> None:
        """Push ``msg`` to everyone in the room, on every server."""
        ...


ClusterApi = grestws.SocketContract("Bench", client_to_server=ClusterServer, server_to_client=BenchClient).at(
    "/cluster"
)

# -- server ---------------------------------------------------------------------------------

_app: grestws.App | None = None


class ClusterHandler(ClusterServer):
    def __init__(self, conn: grestws.ServerConnection[BenchClient]) -> None:
        self.conn = conn

    async def join(self, req: JoinRequest) -> None:
        assert _app is not None
        _app.rooms.join(self.conn, req.room)

    async def publish(self, msg: Tick) -> None:
        assert _app is not None
        await _app.rooms.send(ROOM, BenchClient.tick, msg)


def cluster_app(redis_url: str | None) -> grestws.App:
    """The App of one server: the ``grestws`` peer's limits, a Redis broker when given a URL."""
    options: dict[str, Any] = {}
    if redis_url is not None:
        from grestws.broker.redis import RedisBroker

        options["broker"] = RedisBroker(redis_url)
    unthrottled = grestws.Rate(1e9)
    app = grestws.App(limits=grestws.Limits(rate=unthrottled, identity_rate=unthrottled), **options)
    app.add(ClusterApi, ClusterHandler)
    return app


async def _serve(redis_url: str | None) -> tuple[int, Callable[[], dict[str, Any]]]:
    global _app
    app = _app = cluster_app(redis_url)
    server = await grestws.serve(app, "127.0.0.1", 0)

    def counts() -> dict[str, Any]:
        incidents = app.incidents.counts
        found = incidents() if callable(incidents) else incidents
        return {
            "connections": len(list(server.connections)),
            "room": app.rooms.size(ROOM),
            "broker": msgspec.to_builtins(app.rooms.broker.stats),
            "incidents": {kind.value: n for kind, n in found.items() if n},
        }

    return server.port, counts


# -- client ---------------------------------------------------------------------------------

Client = grestws.Client[ClusterServer, BenchClient]


class _Ticks(BenchClient):
    def __init__(self, on_tick: OnTick | None) -> None:
        self.on_tick = on_tick

    async def tick(self, msg: Tick) -> None:
        if self.on_tick is not None:
            self.on_tick(msg)


class GrestwsCluster(ClusterPeer[Client]):
    async def connect(self, port: int, on_tick: OnTick | None = None) -> Client:
        return await grestws.connect(f"ws://127.0.0.1:{port}", ClusterApi, handlers=_Ticks(on_tick))

    async def join(self, conn: Client) -> None:
        await conn.outgoing.join(JoinRequest(ROOM))

    async def publish(self, conn: Client, msg: Tick) -> None:
        await conn.outgoing.publish(msg)

    async def close(self, conn: Client) -> None:
        await conn.close()


if __name__ == "__main__":
    main(_serve, GrestwsCluster)
