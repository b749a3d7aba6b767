"""The App of ``python -m benchmarks.chaos``, served by ``grestws serve benchmarks.chaos_app:app``.

Subscribers ``join`` the room :data:`ROOM` (on every connection: their setup callback
calls it again after each reconnect), callers call ``read`` in a loop, and one announcer
calls ``announce(k)`` for k = 1, 2, 3 ...; its handler pushes ``note(k)`` to the room on
every process of the cluster (through the broker that ``--broker`` gives) and answers
once the push is handed over: an OK answer means that the push was written to this
process's members and handed to the broker.
"""

from __future__ import annotations

from typing import Protocol

import grestws

__all__ = ("ROOM", "ChaosApi", "ChaosClient", "ChaosHandler", "ChaosServer", "app")

ROOM = "r"
"""The room every subscriber joins and every announcement goes to."""


class ChaosServer(Protocol):
    @grestws.request(idempotent=True)
    async def join(self, room: str) -> None:
        """Join ``room`` (a no-op when in it already: a resumed session keeps its rooms)."""
        ...

    @grestws.request(idempotent=True)
    async def read(self, n: int) -> int:
        """``n``: the steady idempotent call."""
        ...

    @grestws.request
    async def announce(self, n: int) -> None:
        """Push ``note(n)`` to :data:`ROOM` on every process. Not idempotent: one that
        fails with ConnectionLostError may or may not have been pushed."""
        ...


class ChaosClient(Protocol):
    @grestws.notify
    async def note(self, n: int) -> None: ...


ChaosApi = grestws.SocketContract("ChaosApi", client_to_server=ChaosServer, server_to_client=ChaosClient).at(
    "/ws/chaos"
)

app = grestws.App(shutdown_timeout=2.0)


class ChaosHandler(ChaosServer):
    def __init__(self, conn: grestws.ServerConnection[ChaosClient]) -> None:
        self.conn = conn

    async def join(self, room: str) -> None:
        app.rooms.join(self.conn, room)

    async def read(self, n: int) -> int:
        return n

    async def announce(self, n: int) -> None:
        await app.rooms.send(ROOM, ChaosClient.note, n)


app.add(ChaosApi, ChaosHandler)
