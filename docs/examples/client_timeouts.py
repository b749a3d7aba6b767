"""Request timeouts: per client, per call, and cancelling a call.

Run from the repository root: ``python docs/examples/client_timeouts.py``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grestws


class ReportServer(Protocol):
    @grestws.request
    async def build_report(self, seconds: float) -> str: ...


class NoCalls(Protocol):
    pass


ReportApi = grestws.SocketContract("ReportApi", client_to_server=ReportServer, server_to_client=NoCalls).at(
    "/ws/reports"
)

finished: list[float] = []


class ReportHandler(ReportServer):
    def __init__(self, conn: grestws.ServerConnection[NoCalls]) -> None:
        pass

    async def build_report(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        finished.append(seconds)
        return f"report after {seconds} s"


app = grestws.App()
app.add(ReportApi, ReportHandler)


async def main() -> None:
    async with (
        grestws.serve(app, "127.0.0.1", 0) as server,
        grestws.connect(server.url, ReportApi, timeout=0.5) as client,
    ):
        # The client's default (0.5 s here, 30 s unless set) applies to every request.
        print(await client.outgoing.build_report(0.1))
        try:
            await client.outgoing.build_report(1.0)
        except grestws.RequestTimeoutError as exc:
            print("timed out:", exc)

        # One call with its own timeout; None waits as long as it takes.
        try:
            await client.with_timeout(0.1).build_report(0.3)
        except TimeoutError as exc:  # RequestTimeoutError is also a TimeoutError
            print("timed out:", exc)
        print(await client.with_timeout(None).build_report(0.6))

        # Cancelling a call is safe: the request is forgotten, a late answer is ignored.
        try:
            async with asyncio.timeout(0.1):
                await client.outgoing.build_report(0.2)
        except TimeoutError:
            print("cancelled by asyncio.timeout")

        # There is no cancel frame: the server ran every call to its end.
        await asyncio.sleep(0.6)
        print("the server finished:", sorted(finished))
        assert sorted(finished) == [0.1, 0.2, 0.3, 0.6, 1.0]


if __name__ == "__main__":
    asyncio.run(main())
