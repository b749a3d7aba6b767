"""Failures over real sockets: validation, declared and undeclared errors, unknown routes,
timeouts."""

from __future__ import annotations

import asyncio
import logging

import pytest

import grestws
from tests.conftest import StartServer
from tests.support import (
    WAIT,
    Hub,
    LooseShout,
    Note,
    Posted,
    Question,
    RoomApi,
    RoomClientHandler,
    RoomFull,
    RoomInfo,
    Shout,
    ShoutCatcher,
    SkewClientSide,
    next_item,
    raw_socket,
    recv_frame,
    room_app,
    skew_app,
)


class TestValidation:
    async def test_server_rejects_an_empty_text(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            with pytest.raises(grestws.ValidationError) as caught:
                await asyncio.wait_for(client.outgoing.post(Note(text="")), WAIT)
            error = caught.value
            assert (error.type, error.status_code) == ("VALIDATION_ERROR", 422)
            assert [issue.path for issue in error.data] == ["text"]
            assert "length" in error.data[0].message
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0

    @pytest.mark.parametrize(
        ("payload", "path", "code"),
        [
            ('{"text":""}', "text", "invalid_value"),
            ('{"text":5}', "text", "invalid_type"),
            ('{"roomId":"r"}', "text", "missing_field"),
            ('{"text":"ok","roomId":7}', "roomId", "invalid_type"),
            ("[1,2]", "", "invalid_type"),
            ('{"text":"ok"', "", "invalid_json"),
            ("", "", "invalid_json"),
        ],
    )
    async def test_server_names_the_field(
        self, start_server: StartServer, payload: str, path: str, code: str
    ) -> None:
        server = await start_server(room_app(Hub()))
        async with raw_socket(server.url + RoomApi.path) as ws:
            await ws.send(f"r:RoomApi.post:7:{payload}")
            frame = await recv_frame(ws)
        assert (frame.type, frame.path, frame.id) == ("s", "RoomApi.post", "7")
        assert frame.data["success"] is False
        assert (frame.data["type"], frame.data["statusCode"]) == ("VALIDATION_ERROR", 422)
        [issue] = frame.data["data"]
        assert (issue["path"], issue["code"]) == (path, code)
        assert issue["message"]

    async def test_server_drops_a_bad_notify(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with raw_socket(server.url + RoomApi.path) as ws:
            await ws.send('m:RoomApi.record::{"text":""}')
            await ws.send('m:RoomApi.record::{"text":"kept"}')
            assert await next_item(hub.notes) == Note(text="kept")
            await ws.send("r:RoomApi.count:1:")
            frame = await recv_frame(ws)
        assert frame.data == {"success": True, "type": "OK", "data": 1}
        assert any("RoomApi.record" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

    async def test_client_rejects_a_response_of_the_wrong_type(self, start_server: StartServer) -> None:
        server = await start_server(skew_app())
        async with grestws.connect(server.url, SkewClientSide) as client:
            with pytest.raises(grestws.ValidationError) as caught:
                await asyncio.wait_for(client.outgoing.label(), WAIT)
            assert "Skew.label" in str(caught.value)
            assert caught.value.data
            await asyncio.wait_for(client.outgoing.shout_back(LooseShout(text="still open")), WAIT)

    async def test_client_drops_a_bad_notify_and_reports_it(self, start_server: StartServer) -> None:
        server = await start_server(skew_app())
        catcher = ShoutCatcher()
        errors: list[grestws.GrestwsError] = []
        async with grestws.connect(server.url, SkewClientSide, handlers=catcher) as client:
            client.on_error(errors.append)
            await asyncio.wait_for(client.outgoing.shout_back(LooseShout(text="")), WAIT)
            await asyncio.wait_for(client.outgoing.shout_back(LooseShout(text="ok")), WAIT)
            assert await next_item(catcher.shouts) == Shout(text="ok")
        assert catcher.shouts.empty()
        [error] = errors
        assert isinstance(error, grestws.ValidationError)
        assert [issue.path for issue in error.data] == ["text"]

    async def test_client_reports_an_unknown_notify(self, start_server: StartServer) -> None:
        server = await start_server(skew_app())
        errors: list[grestws.GrestwsError] = []
        async with grestws.connect(server.url, SkewClientSide, handlers=ShoutCatcher()) as client:
            client.on_error(errors.append)
            await asyncio.wait_for(client.outgoing.unheard_back(), WAIT)
            await asyncio.wait_for(client.outgoing.shout_back(LooseShout(text="after")), WAIT)
        [error] = errors
        assert isinstance(error, grestws.RouteNotFoundError)
        assert error.message == "Route not found: Skew.unheard"


class TestDeclaredErrors:
    async def test_arrives_as_the_declared_class_with_typed_data(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi) as client:
            with pytest.raises(RoomFull) as caught:
                await asyncio.wait_for(client.outgoing.post(Note(text="hi", room_id="full")), WAIT)
            assert await asyncio.wait_for(client.outgoing.post(Note(text="next")), WAIT) == Posted(1, "next")
        error = caught.value
        assert type(error) is RoomFull
        assert error.data == RoomInfo(room_id="full", seats=8)
        assert (error.type, error.status_code, error.message) == ("ROOM_FULL", 400, "Room is full")
        assert isinstance(error.timestamp, int)
        assert error.timestamp > 0

    async def test_as_the_wire_shows_it(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with raw_socket(server.url + RoomApi.path) as ws:
            await ws.send('r:RoomApi.post:1:{"text":"hi","roomId":"full"}')
            frame = await recv_frame(ws)
        assert frame.data["success"] is False
        assert (frame.data["type"], frame.data["statusCode"]) == ("ROOM_FULL", 400)
        assert frame.data["data"] == {"roomId": "full", "seats": 8}
        assert frame.data["context"]["displayMessage"] == "Room is full"


@pytest.mark.logs_errors
class TestUndeclaredErrors:
    @pytest.mark.parametrize("room", ["undeclared", "crash"])
    async def test_arrive_as_server_error_without_details(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture, room: str
    ) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi) as client:
            with pytest.raises(grestws.ServerError) as caught:
                await asyncio.wait_for(client.outgoing.post(Note(text="x", room_id=room)), WAIT)
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0
        error = caught.value
        assert type(error) is grestws.ServerError
        assert (error.type, error.status_code) == ("SERVER_ERROR", 500)
        assert error.ref
        assert error.message is None
        assert error.data is None
        assert "secret" not in str(error)
        assert "secret" not in repr(error)
        [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert error.ref in record.getMessage()
        assert record.exc_info is not None
        assert "secret" in str(record.exc_info[1])

    async def test_the_wire_carries_no_details(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with raw_socket(server.url + RoomApi.path) as ws:
            await ws.send('r:RoomApi.post:1:{"text":"x","roomId":"crash"}')
            raw = await asyncio.wait_for(ws.recv(), WAIT)
        assert isinstance(raw, str)
        assert "secret" not in raw
        assert "RuntimeError" not in raw
        assert "Traceback" not in raw
        assert '"type":"SERVER_ERROR"' in raw

    async def test_a_failing_client_handler_answers_server_error(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        errors: list[grestws.GrestwsError] = []
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler()) as client:
            client.on_error(errors.append)
            (conn,) = hub.connections
            with pytest.raises(grestws.ServerError) as caught:
                await asyncio.wait_for(conn.outgoing.answer(Question(text="crash")), WAIT)
            assert await asyncio.wait_for(conn.outgoing.confirm(), WAIT) is True
        assert caught.value.ref
        assert "secret" not in str(caught.value)
        [reported] = errors
        assert isinstance(reported, grestws.ServerError)
        assert reported.ref == caught.value.ref


@pytest.mark.logs_errors
class TestNestedCalls:
    async def test_a_failing_nested_call_is_a_server_error(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler()) as client:
            with pytest.raises(grestws.ServerError) as caught:
                await asyncio.wait_for(client.outgoing.ask_client(Question(text="crash")), WAIT)
        assert caught.value.ref
        assert "secret" not in str(caught.value)

    async def test_route_not_found_of_a_nested_call_is_a_server_error(
        self, start_server: StartServer
    ) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi) as client:
            with pytest.raises(grestws.ApiError) as caught:
                await asyncio.wait_for(client.outgoing.ask_client(Question(text="x")), WAIT)
        # RoomApi.askClient exists; what failed was the server's own call to RoomApi.answer
        assert type(caught.value) is grestws.ServerError, repr(caught.value)


class TestRouteNotFound:
    async def test_unknown_request_and_the_socket_stays_usable(self, start_server: StartServer) -> None:
        server = await start_server(skew_app())
        async with grestws.connect(server.url, SkewClientSide) as client:
            with pytest.raises(grestws.RouteNotFoundError) as caught:
                await asyncio.wait_for(client.outgoing.missing(), WAIT)
            await asyncio.wait_for(client.outgoing.vanish(), WAIT)
            await asyncio.wait_for(client.outgoing.shout_back(LooseShout(text="fine")), WAIT)
        error = caught.value
        assert (error.type, error.status_code) == ("ROUTE_NOT_FOUND", 404)
        assert error.message == "Route not found: Skew.missing"

    async def test_unknown_notify_is_dropped_and_logged(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = await start_server(skew_app())
        async with grestws.connect(server.url, SkewClientSide, handlers=ShoutCatcher()) as client:
            (server_conn_id,) = (conn.id for conn in server.connections)
            await asyncio.wait_for(client.outgoing.vanish(), WAIT)
            await asyncio.wait_for(client.outgoing.shout_back(LooseShout(text="fine")), WAIT)
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warning.startswith(f"{server_conn_id}: dropped")

    async def test_unknown_notify_log_names_the_path(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = await start_server(skew_app())
        async with grestws.connect(server.url, SkewClientSide, handlers=ShoutCatcher()) as client:
            await asyncio.wait_for(client.outgoing.vanish(), WAIT)
            await asyncio.wait_for(client.outgoing.shout_back(LooseShout(text="fine")), WAIT)
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert "Skew.vanish" in warning

    async def test_server_calls_a_method_the_client_does_not_serve(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            (conn,) = hub.connections
            with pytest.raises(grestws.RouteNotFoundError) as caught:
                await asyncio.wait_for(conn.outgoing.confirm(), WAIT)
            assert caught.value.message == "Route not found: RoomApi.confirm"
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0


class TestTimeouts:
    async def test_client_default_timeout(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, timeout=0.2) as client:
            with pytest.raises(grestws.RequestTimeoutError) as caught:
                await asyncio.wait_for(client.outgoing.block(), WAIT)
            assert isinstance(caught.value, TimeoutError)
            assert (caught.value.path, caught.value.timeout) == ("RoomApi.block", 0.2)
            assert str(caught.value) == "RoomApi.block: no response within 0.2 s"
            # the handler still runs; its late answer is ignored and the socket goes on
            hub.release.set()
            assert await next_item(hub.finished) == "done"
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0

    async def test_per_call_timeout(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, timeout=30) as client:
            quick = client.with_timeout(0.2)
            with pytest.raises(grestws.RequestTimeoutError) as caught:
                await asyncio.wait_for(quick.block(), WAIT)
            assert caught.value.timeout == 0.2
            assert await asyncio.wait_for(quick.count(), WAIT) == 0
            hub.release.set()
            assert await next_item(hub.finished) == "done"

    async def test_cancelled_call_is_forgotten(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            call = asyncio.ensure_future(client.outgoing.block())
            await asyncio.wait_for(hub.started.wait(), WAIT)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            hub.release.set()
            assert await next_item(hub.finished) == "done"
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0

    async def test_server_request_timeout(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub, request_timeout=0.2))
        never = asyncio.Event()
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler(gate=never)):
            (conn,) = hub.connections
            with pytest.raises(grestws.RequestTimeoutError) as caught:
                await asyncio.wait_for(conn.outgoing.confirm(), WAIT)
            assert caught.value.path == "RoomApi.confirm"
            with pytest.raises(grestws.RequestTimeoutError):
                await asyncio.wait_for(conn.with_timeout(0.1).confirm(), WAIT)
            never.set()
