"""Connections over real sockets from open to close: handshake, bad frames, liveness,
closing from either side, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection as RawServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

import grestws
from tests.conftest import StartServer
from tests.support import (
    WAIT,
    Hub,
    Kick,
    Note,
    Posted,
    Question,
    RoomApi,
    RoomClient,
    RoomClientHandler,
    RoomFull,
    RoomHandler,
    RoomInfo,
    SkewClientSide,
    next_item,
    raw_socket,
    recv_frame,
    room_app,
)

CloseLog = asyncio.Queue[tuple[int | None, str]]


def close_log(client: grestws.Client[Any, Any]) -> CloseLog:
    """A queue that gets ``(code, reason)`` when ``client`` closes."""
    log: CloseLog = asyncio.Queue()
    client.on_close(lambda code, reason: log.put_nowait((code, reason)))
    return log


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Read ``ws`` until it closes; the close code and reason the server sent."""
    with pytest.raises(ConnectionClosed) as caught:  # noqa: PT012 - read frames until the close
        for _ in range(10):
            await asyncio.wait_for(ws.recv(), WAIT)
    received = caught.value.rcvd
    assert received is not None
    return received.code, received.reason


@contextlib.asynccontextmanager
async def plain_server(handler: Callable[[RawServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    """A plain websockets server on 127.0.0.1, standing in for a peer that speaks by hand."""
    async with ws_serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


class TestHandshake:
    async def test_server_times_out_a_silent_client(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub(), handshake_timeout=0.3))
        async with raw_socket(server.url + RoomApi.path, handshake=False) as ws:
            frame = await recv_frame(ws)
            assert (frame.type, frame.path, frame.id) == ("x", "", "")
            assert frame.data["success"] is False
            assert (frame.data["type"], frame.data["statusCode"]) == ("SERVER_ERROR", 500)
            assert frame.data["context"]["displayMessage"] == "Handshake timeout"
            assert await closed_with(ws) == (4001, "Handshake failed")

    async def test_frames_before_h_are_dropped(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with raw_socket(server.url + RoomApi.path, handshake=False) as ws:
            await ws.send('m:RoomApi.record::{"text":"too early"}')
            await ws.send("r:RoomApi.count:1:")
            await ws.send("p:::")
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            await ws.send('m:RoomApi.record::{"text":"in time"}')
            await ws.send("r:RoomApi.count:2:")
            frame = await recv_frame(ws)
        assert (frame.type, frame.id) == ("s", "2")
        assert frame.data == {"success": True, "type": "OK", "data": 1}
        assert await next_item(hub.notes) == Note(text="in time")
        assert hub.notes.empty()

    async def test_handshake_headers_reach_the_server(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        url = server.url + "/?room=general"
        async with grestws.connect(url, RoomApi, headers={"authorization": "Bearer t"}):
            (conn,) = hub.connections
            assert conn.handshake_headers == {"authorization": "Bearer t"}
            assert conn.query == {"room": "general"}
            assert conn.request.path == "/ws/room"

    async def test_bad_handshake_headers_are_refused(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with raw_socket(server.url + RoomApi.path, handshake=False) as ws:
            await ws.send('h:::{"n":1}')
            frame = await recv_frame(ws)
            assert frame.type == "x"
            assert frame.data["type"] == "VALIDATION_ERROR"
            assert await closed_with(ws) == (4001, "Handshake failed")

    async def test_handler_factory_refuses_with_not_authorized(self, start_server: StartServer) -> None:
        hub = Hub()
        hub.refuse = grestws.NotAuthorizedError("Who are you?")
        server = await start_server(room_app(hub))
        client = grestws.Client(server.url, RoomApi)
        with pytest.raises(grestws.NotAuthorizedError) as caught:
            await asyncio.wait_for(client.connect(), WAIT)
        assert caught.value.message == "Who are you?"
        assert client.state is grestws.ClientState.CLOSED
        async with raw_socket(server.url + RoomApi.path, handshake=False) as ws:
            await ws.send("h:::{}")
            frame = await recv_frame(ws)
            assert frame.type == "x"
            assert (frame.data["type"], frame.data["statusCode"]) == ("NOT_AUTHORIZED", 401)
            assert frame.data["context"]["displayMessage"] == "Who are you?"
            assert await closed_with(ws) == (4001, "Handshake failed")
        assert not hub.connections
        assert not server.connections

    @pytest.mark.logs_errors
    async def test_handler_factory_crash_is_a_server_error(self, start_server: StartServer) -> None:
        app = grestws.App()

        def factory(conn: grestws.ServerConnection[RoomClient]) -> RoomHandler:
            raise RuntimeError("secret: factory internals")

        app.add(RoomApi, factory)
        server = await start_server(app)
        with pytest.raises(grestws.ServerError) as caught:
            await asyncio.wait_for(grestws.connect(server.url, RoomApi), WAIT)
        assert caught.value.ref
        assert "secret" not in str(caught.value)

    async def test_unknown_path_is_http_404(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        client = grestws.Client(server.url, SkewClientSide)
        with pytest.raises(grestws.ConnectError) as caught:
            await asyncio.wait_for(client.connect(), WAIT)
        assert isinstance(caught.value, ConnectionError)
        assert "HTTP 404" in str(caught.value)
        assert isinstance(caught.value.__cause__, InvalidStatus)
        assert caught.value.__cause__.response.status_code == 404
        assert client.state is grestws.ClientState.CLOSED

    async def test_connection_refused_is_a_connect_error(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        url = server.url
        await server.close()
        with pytest.raises(grestws.ConnectError):
            await asyncio.wait_for(grestws.connect(url, RoomApi), WAIT)

    async def test_client_times_out_a_server_that_never_answers(self) -> None:
        got_h: asyncio.Queue[str] = asyncio.Queue()

        async def mute(ws: RawServerConnection) -> None:
            got_h.put_nowait(str(await ws.recv()))
            with contextlib.suppress(ConnectionClosed):
                await ws.wait_closed()

        async with plain_server(mute) as url:
            client = grestws.Client(url, RoomApi, handshake_timeout=0.3)
            with pytest.raises(grestws.HandshakeTimeoutError):
                await asyncio.wait_for(client.connect(), WAIT)
            assert await next_item(got_h) == "h:::{}"
            assert client.state is grestws.ClientState.CLOSED

    async def test_client_state_and_misuse(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        client = grestws.Client(server.url, RoomApi)
        states = [client.state]
        with pytest.raises(grestws.InvalidStateError):
            _ = client.outgoing
        await asyncio.wait_for(client.connect(), WAIT)
        states.append(client.state)
        with pytest.raises(grestws.InvalidStateError):
            await client.connect()
        await asyncio.wait_for(client.disconnect(), WAIT)
        states.append(client.state)
        assert states == [grestws.ClientState.NEW, grestws.ClientState.OPEN, grestws.ClientState.CLOSED]
        assert client.close_code == 1000
        with pytest.raises(grestws.ConnectionClosedError):
            await asyncio.wait_for(client.outgoing.count(), WAIT)
        with pytest.raises(grestws.ConnectionClosedError):
            await asyncio.wait_for(client.outgoing.poke(), WAIT)
        await asyncio.wait_for(client.disconnect(), WAIT)
        await asyncio.wait_for(client.close(), WAIT)


GARBAGE: list[str | bytes] = [
    b"\x00\xff\xfe binary junk",
    b"r:\xff\xfe:1:{}",
    "",
    "zzz",
    "r:X",
    "r:RoomApi.count:abc:",
    "r:RoomApi.count::",
    "r:RoomApi.count:0:",
    "r:RoomApi.count:-1:",
    "r:RoomApi.count:123456789012345678901234567890:",
    "r::3:{}",
    "m:RoomApi.poke:3:",
    "m::",
    "s:X:999:{}",
    "s:RoomApi.count:1:garbage",
    "o:::",
    "k:::null",
    "x:::{}",
    "h:::{}",
    "q:RoomApi.count:1:",
    "rr:RoomApi.count:1:",
]


class TestBadFrames:
    async def test_garbage_is_ignored_and_the_socket_stays_usable(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with raw_socket(server.url + RoomApi.path) as ws:
            for junk in GARBAGE:
                await ws.send(junk)
            await ws.send("r:RoomApi.post:5:{not json")
            await ws.send("r:Nope.nothing:4:{}")
            await ws.send('r:RoomApi.post:9:{"text":"after the junk"}')
            frames = {}
            for _ in range(3):
                frame = await recv_frame(ws)
                assert frame.type == "s"
                frames[frame.id] = frame
            await ws.send("p:::")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "o:::"
        assert frames.keys() == {"4", "5", "9"}
        assert frames["5"].data["type"] == "VALIDATION_ERROR"
        assert frames["5"].data["data"][0]["code"] == "invalid_json"
        assert frames["4"].path == "Nope.nothing"
        assert frames["4"].data["type"] == "ROUTE_NOT_FOUND"
        assert frames["4"].data["context"]["displayMessage"] == "Route not found: Nope.nothing"
        assert frames["9"].data == {
            "success": True,
            "type": "OK",
            "data": {"noteId": 1, "text": "after the junk"},
        }
        assert hub.pokes.empty()

    async def test_one_bad_client_does_not_disturb_another(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with (
            grestws.connect(server.url, RoomApi) as good,
            raw_socket(server.url + RoomApi.path) as bad,
        ):
            calls = [good.outgoing.post(Note(text=f"n{i}")) for i in range(10)]
            for junk in GARBAGE:
                await bad.send(junk)
            results = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
            assert [r.note_id for r in results] == list(range(1, 11))
            await bad.send("r:RoomApi.count:1:")
            assert (await recv_frame(bad)).data == {"success": True, "type": "OK", "data": 0}
            assert await asyncio.wait_for(good.outgoing.count(), WAIT) == 10

    async def test_oversized_frame_closes_that_connection_only(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub(), limits=grestws.Limits(max_message_size=1024)))
        async with grestws.connect(server.url, RoomApi) as good, raw_socket(server.url + RoomApi.path) as bad:
            await bad.send('m:RoomApi.record::{"text":"' + "x" * 2000 + '"}')
            code, _ = await closed_with(bad)
            assert code == 1009
            assert await asyncio.wait_for(good.outgoing.post(Note(text="ok")), WAIT) == Posted(1, "ok")

    async def test_ping_is_answered_with_pong(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with raw_socket(server.url + RoomApi.path) as ws:
            for _ in range(3):
                await ws.send("p:::")
                assert await asyncio.wait_for(ws.recv(), WAIT) == "o:::"

    async def test_client_answers_ping_and_ignores_garbage(self) -> None:
        heard: asyncio.Queue[str] = asyncio.Queue()

        async def prober(ws: RawServerConnection) -> None:
            assert await ws.recv() == "h:::{}"
            await ws.send("k:::null")
            for junk in GARBAGE:
                await ws.send(junk)
            await ws.send("p:::")
            heard.put_nowait(str(await ws.recv()))
            await ws.send("r:RoomApi.confirm:1:")
            heard.put_nowait(str(await ws.recv()))
            with contextlib.suppress(ConnectionClosed):
                await ws.wait_closed()

        errors: list[grestws.GrestwsError] = []
        async with plain_server(prober) as url:
            client = grestws.Client(url, RoomApi, handlers=RoomClientHandler())
            client.on_error(errors.append)
            async with client:
                assert await next_item(heard) == "o:::"
                assert (
                    await next_item(heard) == 's:RoomApi.confirm:1:{"success":true,"type":"OK","data":true}'
                )
        assert all(isinstance(error, grestws.FrameError) for error in errors)
        assert errors


class TestClosing:
    async def test_pending_request_fails_at_once_when_the_server_closes(
        self, start_server: StartServer
    ) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, timeout=30, reconnect=False) as client:
            closes = close_log(client)
            call = asyncio.ensure_future(client.outgoing.block())
            await asyncio.wait_for(hub.started.wait(), WAIT)
            (conn,) = hub.connections
            await asyncio.wait_for(conn.close(4100, "bye"), WAIT)
            with pytest.raises(grestws.ConnectionClosedError) as caught:
                await asyncio.wait_for(call, WAIT)
            assert (caught.value.code, caught.value.reason) == (4100, "bye")
            assert await next_item(closes) == (4100, "bye")
            assert client.state is grestws.ClientState.CLOSED
            assert client.close_code == 4100
            with pytest.raises(grestws.ConnectionClosedError):
                await asyncio.wait_for(client.outgoing.count(), WAIT)
            hub.release.set()

    async def test_server_closes_from_a_handler(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        server_closes: CloseLog = asyncio.Queue()
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            closes = close_log(client)
            (conn,) = hub.connections
            conn.on_close(lambda code, reason: server_closes.put_nowait((code, reason)))
            await asyncio.wait_for(client.outgoing.kick(Kick(code=4200, reason="kicked")), WAIT)
            assert await next_item(closes) == (4200, "kicked")
            assert await next_item(server_closes) == (4200, "kicked")
            assert not conn.is_open
            late: CloseLog = asyncio.Queue()
            conn.on_close(lambda code, reason: late.put_nowait((code, reason)))
            assert late.get_nowait() == (4200, "kicked")

    async def test_pending_request_fails_at_once_when_the_client_closes(
        self, start_server: StartServer
    ) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        client = await asyncio.wait_for(grestws.connect(server.url, RoomApi, timeout=30), WAIT)
        closes = close_log(client)
        server_closes: CloseLog = asyncio.Queue()
        call = asyncio.ensure_future(client.outgoing.block())
        await asyncio.wait_for(hub.started.wait(), WAIT)
        hub.connections[0].on_close(lambda code, reason: server_closes.put_nowait((code, reason)))
        await asyncio.wait_for(client.close(), WAIT)
        with pytest.raises(grestws.ConnectionClosedError) as caught:
            await asyncio.wait_for(call, WAIT)
        assert caught.value.code == 1000
        assert await next_item(closes) == (1000, "")
        assert await next_item(server_closes) == (1000, "")
        hub.release.set()

    async def test_server_pending_request_fails_at_once_when_the_client_closes(
        self, start_server: StartServer
    ) -> None:
        hub = Hub()
        server = await start_server(room_app(hub, request_timeout=30))
        handler = RoomClientHandler(gate=asyncio.Event())
        client = await asyncio.wait_for(grestws.connect(server.url, RoomApi, handlers=handler), WAIT)
        (conn,) = hub.connections
        call = asyncio.ensure_future(conn.outgoing.confirm())
        await asyncio.wait_for(handler.entered.wait(), WAIT)
        await asyncio.wait_for(client.close(), WAIT)
        with pytest.raises(grestws.ConnectionClosedError):
            await asyncio.wait_for(call, WAIT)
        assert handler.gate is not None
        handler.gate.set()

    async def test_disconnect_waits_for_a_pending_request(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        client = await asyncio.wait_for(grestws.connect(server.url, RoomApi), WAIT)
        closes = close_log(client)
        call = asyncio.ensure_future(client.outgoing.block())
        await asyncio.wait_for(hub.started.wait(), WAIT)
        leaving = asyncio.ensure_future(client.disconnect(timeout=WAIT))
        hub.release.set()
        await asyncio.wait_for(call, WAIT)
        await asyncio.wait_for(leaving, WAIT)
        assert await next_item(closes) == (1000, "")
        assert await next_item(hub.finished) == "done"

    async def test_disconnect_gives_up_after_its_timeout(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        client = await asyncio.wait_for(grestws.connect(server.url, RoomApi, timeout=30), WAIT)
        call = asyncio.ensure_future(client.outgoing.block())
        await asyncio.wait_for(hub.started.wait(), WAIT)
        await asyncio.wait_for(client.disconnect(timeout=0.2), WAIT)
        with pytest.raises(grestws.ConnectionClosedError):
            await asyncio.wait_for(call, WAIT)
        hub.release.set()

    async def test_disconnect_waits_for_the_clients_own_handlers(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        go_on = asyncio.Event()
        handler = RoomClientHandler(gate=go_on)
        client = await asyncio.wait_for(grestws.connect(server.url, RoomApi, handlers=handler), WAIT)
        (conn,) = hub.connections
        call = asyncio.ensure_future(conn.outgoing.answer(Question(text="late but fine")))
        await asyncio.wait_for(handler.entered.wait(), WAIT)
        leaving = asyncio.ensure_future(client.disconnect(timeout=WAIT))
        go_on.set()
        assert await asyncio.wait_for(call, WAIT) == "LATE BUT FINE"
        await asyncio.wait_for(leaving, WAIT)


class TestShutdown:
    async def test_in_flight_request_finishes_then_close_1012(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        client = await asyncio.wait_for(grestws.connect(server.url, RoomApi, reconnect=False), WAIT)
        closes = close_log(client)
        call = asyncio.ensure_future(client.outgoing.block())
        await asyncio.wait_for(hub.started.wait(), WAIT)
        closing = asyncio.ensure_future(server.close(timeout=WAIT))
        await asyncio.sleep(0)  # let close() begin: it stops accepting and drains at once
        assert server.closing
        with pytest.raises(grestws.UnavailableError) as caught:
            await asyncio.wait_for(client.outgoing.count(), WAIT)
        assert caught.value.message == "Server is shutting down"
        hub.release.set()
        await asyncio.wait_for(call, WAIT)
        await asyncio.wait_for(closing, WAIT)
        assert await next_item(closes) == (1012, "Server restarting")
        assert await next_item(hub.finished) == "done"
        assert client.state is grestws.ClientState.CLOSED

    async def test_calls_past_the_grace_period_are_cancelled(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        client = await asyncio.wait_for(
            grestws.connect(server.url, RoomApi, timeout=30, reconnect=False), WAIT
        )
        closes = close_log(client)
        call = asyncio.ensure_future(client.outgoing.block())
        await asyncio.wait_for(hub.started.wait(), WAIT)
        await asyncio.wait_for(server.close(timeout=0.2), WAIT)
        assert await next_item(hub.finished) == "cancelled"
        with pytest.raises(grestws.ServerError) as caught:  # answered before the close
            await asyncio.wait_for(call, WAIT)
        assert caught.value.message == "Cancelled: the server is shutting down"
        assert await next_item(closes) == (1012, "Server restarting")

    async def test_close_is_idempotent_and_stops_listening(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            closes = close_log(client)
            url = server.url
            await asyncio.wait_for(asyncio.gather(server.close(), server.close()), WAIT)
            assert await next_item(closes) == (1012, "Server restarting")
        await asyncio.wait_for(server.close(), WAIT)
        with pytest.raises(grestws.ConnectError):
            await asyncio.wait_for(grestws.connect(url, RoomApi), WAIT)

    async def test_serve_as_a_context_manager(self) -> None:
        async with grestws.serve(room_app(Hub()), "127.0.0.1", 0) as server:
            async with grestws.connect(server.url, RoomApi) as client:
                closes = close_log(client)
                assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0
            assert await next_item(closes) == (1000, "")
        assert not server.connections

    async def test_shutdown_cancels_handlers_of_connections_already_gone(
        self, start_server: StartServer
    ) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        client = await asyncio.wait_for(grestws.connect(server.url, RoomApi, timeout=30), WAIT)
        call = asyncio.ensure_future(client.outgoing.block())
        await asyncio.wait_for(hub.started.wait(), WAIT)
        await asyncio.wait_for(client.close(), WAIT)
        with pytest.raises(grestws.ConnectionClosedError):
            await asyncio.wait_for(call, WAIT)
        await asyncio.wait_for(server.close(timeout=0.2), WAIT)
        try:
            assert hub.finished.get_nowait() == "cancelled"
        finally:
            hub.release.set()

    async def test_handshake_during_shutdown_does_not_hold_it_open(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with raw_socket(server.url + RoomApi.path, handshake=False) as ws:
            closing = asyncio.ensure_future(server.close(timeout=0.2))
            await ws.send("h:::{}")
            finished, _ = await asyncio.wait({closing}, timeout=2.0)
        await asyncio.wait_for(closing, WAIT)
        assert finished, "server.close() waited for a client that connected before it began"


class TestLifecycleEdges:
    async def test_cancelled_disconnect_leaves_the_client_usable(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        client = await grestws.connect(server.url, RoomApi)
        blocked = asyncio.ensure_future(client.outgoing.block())
        disconnecting = asyncio.ensure_future(client.disconnect(timeout=30))
        await asyncio.wait_for(hub.started.wait(), WAIT)
        disconnecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await disconnecting
        assert client.state is grestws.ClientState.OPEN
        hub.release.set()
        await asyncio.wait_for(blocked, WAIT)
        assert await client.outgoing.double(2) == 4
        await asyncio.wait_for(client.disconnect(), WAIT)
        assert client.state is grestws.ClientState.CLOSED

    async def test_server_address_is_known_after_close(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        url, port = server.url, server.port
        await server.close(timeout=1)
        assert (server.url, server.port) == (url, port)
        assert server.host == "127.0.0.1"

    async def test_refusal_with_a_contract_error_arrives_as_its_class(
        self, start_server: StartServer
    ) -> None:
        hub = Hub()
        hub.refuse = RoomFull("No seat left", data=RoomInfo(room_id="r1", seats=2))
        server = await start_server(room_app(hub))
        with pytest.raises(RoomFull) as caught:
            await grestws.connect(server.url, RoomApi)
        assert caught.value.data == RoomInfo(room_id="r1", seats=2)
        assert caught.value.message == "No seat left"
