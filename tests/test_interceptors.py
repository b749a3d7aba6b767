"""Interceptors (:mod:`grestws.interceptors`) around calls, on both sides, over real
sockets: what they see, their order, short-circuits, results they replace, the calls a
connection makes, and what never reaches them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import grestws
from grestws.interceptors import Call, Proceed, outcome
from tests.conftest import StartServer
from tests.support import (
    WAIT,
    Hub,
    Note,
    Posted,
    Question,
    RoomApi,
    RoomClientHandler,
    RoomFull,
    RoomInfo,
    next_item,
    room_app,
)


class Seen:
    """An interceptor that records each call and its outcome; ``name`` marks its entries
    in a log that several share."""

    def __init__(self, name: str = "seen", log: list[str] | None = None) -> None:
        self.name = name
        self.log = [] if log is None else log
        self.calls: list[tuple[Call, str, Any]] = []
        self.done = asyncio.Queue[tuple[Call, str]]()

    async def __call__(self, call: Call, proceed: Proceed) -> Any:
        self.log.append(f"{self.name}>{call.method.wire_name}")
        result: Any = None
        error: BaseException | None = None
        try:
            result = await proceed()
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.log.append(f"<{self.name}")
            self.calls.append((call, outcome(error), result))
            self.done.put_nowait((call, outcome(error)))


def seen_paths(seen: Seen) -> list[tuple[str, str, str]]:
    return [(call.direction, call.path, result) for call, result, _ in seen.calls]


class TestOnTheServer:
    async def test_each_incoming_call_with_its_outcome(self, start_server: StartServer) -> None:
        seen = Seen()
        server = await start_server(room_app(Hub(), interceptors=[seen]))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            assert await client.outgoing.post(Note(text="hi")) == Posted(note_id=1, text="hi")
            with pytest.raises(RoomFull):
                await client.outgoing.post(Note(text="hi", room_id="full"))
            await client.outgoing.poke()
            await next_item(seen.done)
            await next_item(seen.done)
            await next_item(seen.done)
        assert seen_paths(seen) == [
            ("incoming", "RoomApi.post", "OK"),
            ("incoming", "RoomApi.post", "ROOM_FULL"),
            ("incoming", "RoomApi.poke", "OK"),
        ]
        first, _, result = seen.calls[0]
        assert first.arg == Note(text="hi")
        assert result == Posted(note_id=1, text="hi")
        assert first.request_id is not None
        assert first.is_request
        assert first.side == "server"
        assert isinstance(first.connection, grestws.ServerConnection)
        poke = seen.calls[2][0]
        assert (poke.request_id, poke.is_request, poke.arg) == (None, False, None)

    @pytest.mark.logs_errors
    async def test_a_crash_is_seen_as_the_exception(self, start_server: StartServer) -> None:
        seen = Seen()
        server = await start_server(room_app(Hub(), interceptors=[seen]))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            with pytest.raises(grestws.ServerError):
                await client.outgoing.post(Note(text="x", room_id="crash"))
        assert seen_paths(seen) == [("incoming", "RoomApi.post", "SERVER_ERROR")]

    async def test_the_first_is_outermost(self, start_server: StartServer) -> None:
        log: list[str] = []
        outer, inner = Seen("outer", log), Seen("inner", log)
        server = await start_server(room_app(Hub(), interceptors=[outer, inner]))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            await client.outgoing.double(2)
        assert log == ["outer>double", "inner>double", "<inner", "<outer"]

    async def test_they_run_in_the_calls_context(self, start_server: StartServer) -> None:
        seen: list[tuple[str, int | None, str]] = []

        async def context(call: Call, proceed: Proceed) -> Any:
            message = grestws.current_message()
            seen.append((message.path, message.id, grestws.current_connection().id))
            return await proceed()

        server = await start_server(room_app(Hub(), interceptors=[context]))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            await client.outgoing.double(2)
            (conn,) = server.app.connections
        assert len(seen) == 1
        assert seen[0][0] == "RoomApi.double"
        assert seen[0][1] is not None
        assert seen[0][2] == conn.id

    async def test_a_short_circuit_answers_without_the_handler(self, start_server: StartServer) -> None:
        hub = Hub()

        async def guard(call: Call, proceed: Proceed) -> Any:
            if isinstance(call.arg, Note) and call.arg.text == "blocked":
                raise grestws.ForbiddenError("Blocked by policy")
            if call.path == "RoomApi.double" and call.arg == 21:
                return 42  # answered from elsewhere: the handler never runs
            return await proceed()

        server = await start_server(room_app(hub, interceptors=[guard]))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            with pytest.raises(grestws.ForbiddenError, match="Blocked by policy"):
                await client.outgoing.post(Note(text="blocked"))
            assert await client.outgoing.count() == 0  # the handler did not run
            assert await client.outgoing.double(21) == 42
            assert await client.outgoing.double(2) == 4
            await client.outgoing.record(Note(text="blocked"))  # dropped, the server tells nobody
            await client.outgoing.record(Note(text="kept"))
            assert (await next_item(hub.notes)).text == "kept"

    @pytest.mark.logs_errors
    async def test_an_undeclared_short_circuit_is_a_server_error(self, start_server: StartServer) -> None:
        async def leaky(call: Call, proceed: Proceed) -> Any:
            raise grestws.NotFoundError("secret: table 42")

        server = await start_server(room_app(Hub(), interceptors=[leaky]))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            with pytest.raises(grestws.ServerError) as caught:
                await client.outgoing.double(1)
        assert "secret" not in str(caught.value)
        assert caught.value.ref

    async def test_calls_refused_before_the_handler_never_reach_them(self, start_server: StartServer) -> None:
        seen = Seen()
        incidents: list[grestws.Incident] = []
        server = await start_server(room_app(Hub(), interceptors=[seen], on_error=incidents.append))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            with pytest.raises(grestws.ValidationError):
                await client.outgoing.post(Note(text=""))
            assert await client.outgoing.double(1) == 2
        assert seen_paths(seen) == [("incoming", "RoomApi.double", "OK")]
        assert [incident.kind for incident in incidents] == [grestws.IncidentKind.INVALID_PAYLOAD]

    async def test_the_calls_a_connection_makes(self, start_server: StartServer) -> None:
        seen = Seen()
        server = await start_server(room_app(Hub(), interceptors=[seen]))
        async with grestws.connect(
            server.url, RoomApi, handlers=RoomClientHandler(), reconnect=False
        ) as client:
            assert await client.outgoing.ask_client(Question(text="yes?")) == "YES?"
            (conn,) = server.app.connections
            hurried = conn.with_timeout(WAIT)
            assert await hurried.confirm() is True
            await conn.outgoing.tick()
        assert seen_paths(seen) == [
            ("outgoing", "RoomApi.answer", "OK"),
            ("incoming", "RoomApi.askClient", "OK"),
            ("outgoing", "RoomApi.confirm", "OK"),
            ("outgoing", "RoomApi.tick", "OK"),
        ]
        answer = seen.calls[0][0]
        assert answer.connection is conn
        assert answer.arg == Question(text="yes?")
        assert answer.request_id is None

    async def test_a_short_circuited_outgoing_call_is_not_sent(self, start_server: StartServer) -> None:
        async def quiet(call: Call, proceed: Proceed) -> Any:
            if call.direction == "outgoing":
                raise grestws.UnavailableError("Not now")
            return await proceed()

        handler = RoomClientHandler()
        server = await start_server(room_app(Hub(), interceptors=[quiet]))
        async with grestws.connect(server.url, RoomApi, handlers=handler, reconnect=False) as client:
            # raised here, not answered by the client: the handler's own, which any method may answer
            with pytest.raises(grestws.UnavailableError, match="Not now"):
                await client.outgoing.ask_client(Question(text="yes?"))
        assert not handler.entered.is_set()


class TestOnTheClient:
    async def test_outgoing_and_incoming_calls(self, start_server: StartServer) -> None:
        seen = Seen()
        server = await start_server(room_app(Hub()))
        async with grestws.connect(
            server.url, RoomApi, handlers=RoomClientHandler(), reconnect=False, interceptors=[seen]
        ) as client:
            assert await client.outgoing.ask_client(Question(text="yes?")) == "YES?"
            with pytest.raises(RoomFull):
                await client.with_timeout(WAIT).post(Note(text="x", room_id="full"))
            await client.outgoing.poke()
        assert seen_paths(seen) == [
            ("incoming", "RoomApi.answer", "OK"),
            ("outgoing", "RoomApi.askClient", "OK"),
            ("outgoing", "RoomApi.post", "ROOM_FULL"),
            ("outgoing", "RoomApi.poke", "OK"),
        ]
        answer, ask = seen.calls[0][0], seen.calls[1][0]
        assert answer.side == ask.side == "client"
        assert answer.connection is client
        assert ask.connection is client
        assert (answer.identity, ask.identity) == (None, None)
        assert answer.request_id is not None

    async def test_a_short_circuit_sends_nothing(self, start_server: StartServer) -> None:
        hub = Hub()

        async def offline(call: Call, proceed: Proceed) -> Any:
            if call.path == "RoomApi.post":
                raise grestws.UnavailableError("Offline mode")
            return await proceed()

        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, reconnect=False, interceptors=[offline]) as client:
            with pytest.raises(grestws.UnavailableError, match="Offline mode"):
                await client.outgoing.post(Note(text="hi"))
            assert await client.outgoing.count() == 0

    async def test_an_incoming_short_circuit_answers_the_server(self, start_server: StartServer) -> None:
        async def refuse(call: Call, proceed: Proceed) -> Any:
            if call.direction == "incoming":
                raise grestws.ForbiddenError("This client answers nothing")
            return await proceed()

        hub = Hub()
        server = await start_server(room_app(hub))
        handler = RoomClientHandler()
        async with grestws.connect(
            server.url, RoomApi, handlers=handler, reconnect=False, interceptors=[refuse]
        ) as client:
            await asyncio.wait_for(client.outgoing.poke(), WAIT)
            (conn,) = hub.connections
            with pytest.raises(grestws.ForbiddenError, match="answers nothing"):
                await conn.outgoing.confirm()
        assert not handler.entered.is_set()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, "OK"),
        (grestws.ValidationError("x", data=[]), "VALIDATION_ERROR"),
        (RoomFull("full", data=RoomInfo(room_id="x", seats=1)), "ROOM_FULL"),
        (grestws.RequestTimeoutError("RoomApi.post", 1.0), "TIMEOUT"),
        (grestws.ConnectionLostError(1006, ""), "CONNECTION_LOST"),
        (grestws.ConnectionClosedError(1000, ""), "CONNECTION_CLOSED"),
        (asyncio.CancelledError(), "CANCELLED"),
        (RuntimeError("boom"), "SERVER_ERROR"),
    ],
)
def test_outcome(error: BaseException | None, expected: str) -> None:
    assert outcome(error) == expected
