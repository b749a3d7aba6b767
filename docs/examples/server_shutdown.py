"""Graceful shutdown: calls in flight get a grace period, new requests are refused.

Run from the repository root: ``python docs/examples/server_shutdown.py``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grestws


class WorkServer(Protocol):
    @grestws.request
    async def work(self, seconds: float) -> str: ...


class NoCalls(Protocol):
    pass


WorkApi = grestws.SocketContract("WorkApi", client_to_server=WorkServer, server_to_client=NoCalls).at(
    "/ws/work"
)

cancelled: list[float] = []


class WorkHandler(WorkServer):
    def __init__(self, conn: grestws.ServerConnection[NoCalls]) -> None:
        pass

    async def work(self, seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.append(seconds)
            raise
        return f"worked {seconds} s"


app = grestws.App(shutdown_timeout=10.0)
app.add(WorkApi, WorkHandler)


async def main() -> None:
    server = await grestws.serve(app, "127.0.0.1", 0)
    # reconnect=False: this client shows what the server does; a reconnecting one would
    # send the refused request again on its next connection (see docs/reconnect.md).
    client = await grestws.connect(server.url, WorkApi, reconnect=False)
    closed: list[tuple[int | None, str]] = []
    client.on_close(lambda code, reason: closed.append((code, reason)))

    short = asyncio.create_task(client.outgoing.work(0.2))
    long = asyncio.create_task(client.outgoing.work(30))
    await asyncio.sleep(0.05)  # both calls are now running on the server

    shutdown = asyncio.create_task(server.close(timeout=1.0))
    await asyncio.sleep(0.05)

    # While draining, a new request is answered UNAVAILABLE: it did not run.
    try:
        await client.outgoing.work(0)
    except grestws.UnavailableError as exc:
        print("new request while draining:", exc)

    await shutdown
    print("short call:", await short)  # finished within the grace period
    try:
        await long
    except grestws.ServerError as exc:
        print("long call:", exc)  # cancelled on the server, answered, then the connection closed
    assert cancelled == [30]
    assert closed == [(1012, "Server restarting")]
    assert client.state is grestws.ClientState.CLOSED
    assert not server.connections


if __name__ == "__main__":
    asyncio.run(main())
