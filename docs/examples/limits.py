"""Limits: what a server allows each peer, and what a peer sees past them.

Run: python docs/examples/limits.py
"""

from __future__ import annotations

import asyncio
import collections
import math
from typing import Protocol

import msgspec

import grestws


class Query(msgspec.Struct):
    text: str


class SearchServer(Protocol):
    @grestws.request(rate=grestws.Rate(2, per=60))  # at most 2 a minute per connection
    async def export(self) -> str: ...

    @grestws.request(deadline=0.1)  # cancelled after 0.1 s; the caller gets SERVER_ERROR
    async def slow(self) -> None: ...

    @grestws.request(deadline=math.inf)  # no deadline at all
    async def watch(self) -> None: ...

    @grestws.request
    async def search(self, query: Query) -> list[str]: ...


class SearchClient(Protocol):
    @grestws.notify
    async def hit(self, text: str) -> None: ...


SearchApi = grestws.SocketContract("Search", client_to_server=SearchServer, server_to_client=SearchClient).at(
    "/ws/search"
)


class SearchHandler(SearchServer):
    def __init__(self, conn: grestws.ServerConnection[SearchClient]) -> None:
        self.conn = conn

    async def search(self, query: Query) -> list[str]:
        return [query.text.upper()]

    async def export(self) -> str:
        return "export.csv"

    async def slow(self) -> None:
        await asyncio.sleep(10)

    async def watch(self) -> None:
        await asyncio.sleep(10)


# Every incident is counted by kind; the hook sees each one with its connection.
seen: collections.Counter[str] = collections.Counter()


def on_error(incident: grestws.Incident) -> None:
    seen[incident.kind.value] += 1


app = grestws.App(
    limits=grestws.Limits(
        rate=grestws.Rate(20, burst=10),  # per connection: 20 frames a second, 10 at once
        max_in_flight=64,  # calls served at once per connection
        deadline=30.0,  # seconds a handler may run, unless its method says otherwise
        max_connections_per_identity=8,
    ),
    allowed_origins=["https://app.example.com", "https://*.example.com"],
    on_error=on_error,
)
app.add(SearchApi, SearchHandler)


async def main() -> None:
    async with (
        grestws.serve(app, "127.0.0.1", 0) as server,
        grestws.connect(server.url, SearchApi) as client,
    ):
        # A method rate: the third export within a minute is refused, with a hint.
        print(await client.outgoing.export(), await client.outgoing.export())
        try:
            await client.outgoing.export()
        except grestws.TooManyRequestsError as exc:
            wait = exc.data.retry_after_ms if exc.data is not None else 0
            print("export refused, retry in", round(wait / 1000), "s")

        # A deadline: the handler is cancelled and the caller told at once.
        try:
            await client.outgoing.slow()
        except grestws.ServerError as exc:
            print("slow:", exc.message)

        # The connection's rate: a burst of 10, then refusals until the bucket refills.
        results = await asyncio.gather(
            *(client.outgoing.search(Query("x")) for _ in range(15)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, grestws.TooManyRequestsError)]
        print(f"{len(results) - len(refused)} searches served, {len(refused)} refused")

        # A foreign browser origin is refused at the upgrade.
        try:
            await grestws.connect(server.url, SearchApi, upgrade_headers={"Origin": "https://evil.example"})
        except grestws.ConnectError as exc:
            print("foreign origin:", exc)

    print("incidents:", dict(sorted(seen.items())))
    assert seen["rate_limited"] == 1 + len(refused)
    assert seen["deadline_exceeded"] == 1
    assert seen["connection_refused"] == 1


if __name__ == "__main__":
    asyncio.run(main())
