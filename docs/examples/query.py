"""Typed query parameters on connect: declared on the schema, checked by the client,
coerced by the server, read typed by the handler.

Run from the repository root: ``python docs/examples/query.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Protocol

import msgspec
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import grestws


class RoomQuery(msgspec.Struct):
    room: Annotated[str, msgspec.Meta(min_length=1)]
    page: int = 1
    live: bool = False


class RoomServer(Protocol):
    @grestws.request
    async def joined(self) -> RoomQuery: ...


class RoomClient(Protocol):
    @grestws.notify
    async def message(self, text: str) -> None: ...


Rooms = grestws.SocketContract("Rooms", client_to_server=RoomServer, server_to_client=RoomClient)
RoomApi = Rooms.at("/ws/rooms", query=RoomQuery)


class RoomHandler(RoomServer):
    def __init__(self, conn: grestws.ServerConnection[RoomClient]) -> None:
        self.query = RoomApi.query_of(conn)  # a RoomQuery, parsed once per connection
        print(f"joined {self.query.room}, page {self.query.page}, live={self.query.live}")

    async def joined(self) -> RoomQuery:
        return self.query


async def typed(url: str) -> None:
    query = RoomQuery(room="general", page=3, live=True)
    async with grestws.connect(url, RoomApi, query=query) as client:
        assert await client.outgoing.joined() == query
    assert RoomApi.encode_query(query) == {"room": "general", "page": "3", "live": "true"}


async def checked_by_the_client() -> None:
    nowhere = "ws://127.0.0.1:1"  # nothing listens here, and nothing is sent
    try:
        await grestws.connect(nowhere, RoomApi, query=RoomQuery(room=""))
    except grestws.ValidationError as exc:
        issues = exc.data
    else:
        raise AssertionError("connected")
    print("refused before connecting:", issues)
    assert [issue.path for issue in issues] == ["room"]


async def coerced_by_the_server(url: str) -> None:
    async with ws_connect(url + "/ws/rooms?room=lobby&page=7&live=true") as ws:
        await ws.send("h:::{}")
        assert await ws.recv() == "k:::null"
        await ws.send("r:Rooms.joined:1:")
        answer = await ws.recv()
        print("<", answer)
        assert '"data":{"room":"lobby","page":7,"live":true}' in str(answer)


async def refused_by_the_server(url: str) -> None:
    async with ws_connect(url + "/ws/rooms?room=lobby&page=two") as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()  # no x frame: the server closes before the handshake
        print("closed:", ws.close_code, ws.close_reason)
        assert (ws.close_code, ws.close_reason) == (4000, "Invalid query parameters")

    untyped = Rooms.at("/ws/rooms")  # a client that does not know the query type
    try:
        await grestws.connect(url, untyped)
    except grestws.ValidationError as exc:
        print("a grestws client raises:", exc)
    else:
        raise AssertionError("connected")


async def main() -> None:
    app = grestws.App()
    app.add(RoomApi, RoomHandler)
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        await typed(server.url)
        await checked_by_the_client()
        await coerced_by_the_server(server.url)
        await refused_by_the_server(server.url)


if __name__ == "__main__":
    asyncio.run(main())
