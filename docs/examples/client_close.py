"""Ending a connection: disconnect() vs close(), what fails, and connect errors.

Run from the repository root: ``python docs/examples/client_close.py``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve

import grestws


class JobServer(Protocol):
    @grestws.request
    async def run_job(self, seconds: float) -> str: ...


class NoCalls(Protocol):
    pass


JobContract = grestws.SocketContract("JobApi", client_to_server=JobServer, server_to_client=NoCalls)
JobApi = JobContract.at("/ws/jobs")


class JobHandler(JobServer):
    def __init__(self, conn: grestws.ServerConnection[NoCalls]) -> None:
        pass

    async def run_job(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"


app = grestws.App()
app.add(JobApi, JobHandler)


async def silent(ws: ServerConnection) -> None:
    """A WebSocket server that never answers the handshake frame."""
    await ws.wait_closed()


async def main() -> None:
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        # disconnect(): waits (at most its timeout) for pending requests, then closes.
        client = await grestws.connect(server.url, JobApi)
        job = asyncio.create_task(client.outgoing.run_job(0.2))
        await asyncio.sleep(0.05)
        await client.disconnect(timeout=5.0)
        print("after disconnect():", await job)

        # close(): closes at once; what is pending fails with ConnectionClosedError.
        client = await grestws.connect(server.url, JobApi)
        job = asyncio.create_task(client.outgoing.run_job(0.2))
        await asyncio.sleep(0.05)
        await client.close()
        try:
            await job
        except grestws.ConnectionClosedError as exc:
            print("after close():", exc)

        # Calls on a closed client fail the same way, at once.
        try:
            await client.outgoing.run_job(0)
        except grestws.ConnectionClosedError as exc:
            print("call after close:", exc, "| state:", client.state.value)

        # A URL path the server does not serve: HTTP 404 at the upgrade.
        try:
            await grestws.connect(server.url, JobContract.at("/ws/nothing-here"))
        except grestws.ConnectError as exc:
            print("wrong path:", exc)
        url = server.url

    # Nothing listens any more.
    try:
        await grestws.connect(url, JobApi)
    except grestws.ConnectError as exc:
        print("refused:", exc)

    # A server that never answers the handshake.
    async with websockets_serve(silent, "127.0.0.1", 0) as mute:
        port = mute.sockets[0].getsockname()[1]
        try:
            await grestws.connect(f"ws://127.0.0.1:{port}", JobApi, handshake_timeout=0.3)
        except grestws.HandshakeTimeoutError as exc:
            print("no answer:", exc)


if __name__ == "__main__":
    asyncio.run(main())
