"""Typed query parameters on connect, over real sockets."""

from __future__ import annotations

import asyncio
from typing import Annotated, Protocol

import msgspec
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import grestws
from tests.conftest import StartServer

WAIT = 5.0


class RoomQuery(msgspec.Struct):
    room: Annotated[str, msgspec.Meta(min_length=1)]
    page: int = 1
    live: bool = False


class RoomServer(Protocol):
    @grestws.request
    async def where(self) -> RoomQuery: ...


class RoomClient(Protocol):
    @grestws.notify
    async def nothing(self) -> None: ...


Rooms = grestws.SocketContract("Rooms", client_to_server=RoomServer, server_to_client=RoomClient)
ByRoom = Rooms.at("/rooms", query=RoomQuery)
Untyped = Rooms.at("/rooms")


class RoomHandler(RoomServer):
    made = 0

    def __init__(self, conn: grestws.ServerConnection[RoomClient]) -> None:
        RoomHandler.made += 1
        self.conn = conn

    async def where(self) -> RoomQuery:
        return ByRoom.query_of(self.conn)


def app() -> grestws.App:
    served = grestws.App()
    served.add(ByRoom, RoomHandler)
    return served


class TestAccepted:
    async def test_the_handler_reads_the_typed_query(self, start_server: StartServer) -> None:
        server = await start_server(app())
        query = RoomQuery(room="general", page=3, live=True)
        async with grestws.connect(server.url, ByRoom, query=query) as client:
            assert await asyncio.wait_for(client.outgoing.where(), WAIT) == query

    async def test_strings_are_coerced_and_defaults_filled(self, start_server: StartServer) -> None:
        server = await start_server(app())
        async with ws_connect(server.url + "/rooms?room=lobby&page=7&live=true") as ws:
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            await ws.send("r:Rooms.where:1:")
            answer = msgspec.json.decode(str(await asyncio.wait_for(ws.recv(), WAIT)).split(":", 3)[3])
            assert answer["data"] == {"room": "lobby", "page": 7, "live": True}

    def test_query_parameters_on_the_wire(self) -> None:
        assert ByRoom.encode_query(RoomQuery(room="a b", page=2, live=True)) == {
            "room": "a b",
            "page": "2",
            "live": "true",
        }


class TestRefused:
    async def test_the_client_checks_the_query_before_connecting(self, start_server: StartServer) -> None:
        server = await start_server(app())
        made = RoomHandler.made
        with pytest.raises(grestws.ValidationError) as caught:
            await grestws.connect(server.url, ByRoom, query=RoomQuery(room=""))
        assert caught.value.data[0].path == "room"
        assert RoomHandler.made == made
        assert server.connections == set()

    @pytest.mark.parametrize("query", ["", "?page=2", "?room=x&page=two", "?room="])
    async def test_the_server_closes_with_4000(self, start_server: StartServer, query: str) -> None:
        server = await start_server(app())
        async with ws_connect(server.url + "/rooms" + query) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)  # no x frame: the close comes first
            assert (ws.close_code, ws.close_reason) == (4000, "Invalid query parameters")

    async def test_a_grestws_client_raises_validation_error_on_4000(self, start_server: StartServer) -> None:
        server = await start_server(app())
        with pytest.raises(grestws.ValidationError) as caught:
            await grestws.connect(server.url, Untyped)
        assert caught.value.message == "Invalid query parameters"

    def test_a_query_type_msgspec_cannot_handle(self) -> None:
        with pytest.raises(grestws.ContractError):
            Rooms.at("/bad", query=int)

    def test_query_of_a_non_connection(self) -> None:
        with pytest.raises(grestws.InvalidStateError):
            ByRoom.query_of(object())


async def test_a_missing_query_names_the_missing_field(start_server: StartServer) -> None:
    server = await start_server(app())
    with pytest.raises(grestws.ValidationError) as caught:
        await grestws.connect(server.url, ByRoom)
    assert caught.value.data[0].path == "room"
    assert caught.value.data[0].code == "missing_field"
