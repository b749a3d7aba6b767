"""Calls over real sockets: every call kind both ways, concurrency, context, results."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection as RawServerConnection
from websockets.asyncio.server import serve as ws_serve

import grestws
from examples.chat.contract import ChatApi, SendMessageRequest
from examples.chat.server import ChatHandler, ServerChatApi
from tests.conftest import StartServer
from tests.support import (
    WAIT,
    ChatInbox,
    Hub,
    Note,
    Posted,
    Question,
    RoomApi,
    RoomClient,
    RoomClientHandler,
    RoomFull,
    RoomInfo,
    SkewHandler,
    SkewServerSide,
    next_item,
    room_app,
)


class TestClientToServer:
    async def test_request_with_input_and_result(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi) as client:
            posted = await asyncio.wait_for(client.outgoing.post(Note(text="hello")), WAIT)
            assert posted == Posted(note_id=1, text="hello")
            posted = await asyncio.wait_for(client.outgoing.post(Note(text="again")), WAIT)
            assert posted == Posted(note_id=2, text="again")

    async def test_request_without_input_with_result(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi) as client:
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0
            await asyncio.wait_for(client.outgoing.post(Note(text="x")), WAIT)
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 1

    async def test_request_with_input_without_result(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            await asyncio.wait_for(client.outgoing.rename(Question(text="new name")), WAIT)
            assert await next_item(hub.notes) == Note(text="new name", room_id="renamed")

    async def test_request_without_input_or_result(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi) as client:
            await asyncio.wait_for(client.outgoing.post(Note(text="x")), WAIT)
            await asyncio.wait_for(client.outgoing.clear(), WAIT)
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0

    async def test_notify_with_input(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            await asyncio.wait_for(client.outgoing.record(Note(text="a", room_id="r1")), WAIT)
            await asyncio.wait_for(client.outgoing.record(Note(text="b")), WAIT)
            assert await next_item(hub.notes) == Note(text="a", room_id="r1")
            assert await next_item(hub.notes) == Note(text="b", room_id="lobby")

    async def test_notify_without_input(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            await asyncio.wait_for(client.outgoing.poke(), WAIT)
            assert await next_item(hub.pokes) is None


class TestServerToClient:
    async def test_notify_with_and_without_input(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        catcher = RoomClientHandler()
        async with grestws.connect(server.url, RoomApi, handlers=catcher):
            (conn,) = hub.connections
            await asyncio.wait_for(conn.outgoing.notice(Note(text="pushed", room_id="r2")), WAIT)
            await asyncio.wait_for(conn.outgoing.tick(), WAIT)
            assert await next_item(catcher.notices) == Note(text="pushed", room_id="r2")
            assert await next_item(catcher.ticks) is None

    async def test_request_with_input_and_result(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler()):
            (conn,) = hub.connections
            assert await asyncio.wait_for(conn.outgoing.answer(Question(text="hi")), WAIT) == "HI"

    async def test_request_without_input_with_result(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler()):
            (conn,) = hub.connections
            assert await asyncio.wait_for(conn.outgoing.confirm(), WAIT) is True

    async def test_request_with_input_without_result(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        catcher = RoomClientHandler()
        async with grestws.connect(server.url, RoomApi, handlers=catcher):
            (conn,) = hub.connections
            await asyncio.wait_for(conn.outgoing.forget(Question(text="it")), WAIT)
            assert await next_item(catcher.forgotten) == Question(text="it")

    async def test_request_awaited_by_a_server_handler(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler()) as client:
            answer = await asyncio.wait_for(client.outgoing.ask_client(Question(text="are you there")), WAIT)
            assert answer == "ARE YOU THERE"

    async def test_handlers_set_one_by_one_with_on(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        seen: asyncio.Queue[Note] = asyncio.Queue()

        async def show(note: Note) -> None:
            seen.put_nowait(note)

        async def shout(question: Question) -> str:
            return question.text + "!"

        client = grestws.Client(server.url, RoomApi)
        client.on(RoomClient.notice)(show)
        await asyncio.wait_for(client.connect(), WAIT)
        try:
            client.on(RoomClient.answer)(shout)
            (conn,) = hub.connections
            await asyncio.wait_for(conn.outgoing.notice(Note(text="n")), WAIT)
            assert await next_item(seen) == Note(text="n")
            assert await asyncio.wait_for(conn.outgoing.answer(Question(text="hey")), WAIT) == "hey!"
            with pytest.raises(grestws.RouteNotFoundError):
                await asyncio.wait_for(conn.outgoing.confirm(), WAIT)
        finally:
            await client.disconnect()

    async def test_chat_push_reaches_every_member(self, start_server: StartServer) -> None:
        app = grestws.App()
        app.add(ServerChatApi, ChatHandler)
        server = await start_server(app)
        inboxes = [ChatInbox(), ChatInbox()]
        async with (
            grestws.connect(
                server.url, ChatApi.use(grestws.BearerAuth("secret-alice")), handlers=inboxes[0]
            ) as alice,
            grestws.connect(server.url, ChatApi.use(grestws.BearerAuth("secret-bob")), handlers=inboxes[1]),
        ):
            reply = await asyncio.wait_for(
                alice.outgoing.send_message(SendMessageRequest(text="hi all", channel_id="general")), WAIT
            )
            assert reply.success
            for inbox in inboxes:
                message = await next_item(inbox.messages)
                assert (message.id, message.text, message.sender_id) == (reply.message_id, "hi all", "alice")


class TestConcurrency:
    async def test_hundred_requests_on_one_connection(self, start_server: StartServer) -> None:
        hub = Hub()
        hub.barrier = asyncio.Barrier(100)
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            calls = [client.outgoing.double(n) for n in range(100)]
            results = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
        # every handler waited at the barrier until all 100 were in flight at once
        assert results == [2 * n for n in range(100)]

    async def test_calls_both_ways_at_once(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler()) as client:
            (conn,) = hub.connections
            up = [client.outgoing.post(Note(text=f"n{i}")) for i in range(20)]
            down = [conn.outgoing.answer(Question(text=f"q{i}")) for i in range(20)]
            asked = [client.outgoing.ask_client(Question(text=f"a{i}")) for i in range(20)]
            posted, answers, asked_answers = await asyncio.wait_for(
                asyncio.gather(asyncio.gather(*up), asyncio.gather(*down), asyncio.gather(*asked)), WAIT
            )
        assert sorted(p.note_id for p in posted) == list(range(1, 21))
        assert {p.text for p in posted} == {f"n{i}" for i in range(20)}
        assert answers == [f"Q{i}" for i in range(20)]
        assert asked_answers == [f"A{i}" for i in range(20)]


class TestContext:
    async def test_current_connection_and_message_in_server_handlers(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as client:
            first = await asyncio.wait_for(client.outgoing.whoami(), WAIT)
            second = await asyncio.wait_for(client.outgoing.whoami(), WAIT)
        (conn,) = hub.connections
        assert first.side == "server"
        assert first.connection_id == conn.id == second.connection_id
        assert first.path == "/ws/room"
        assert first.remote_host == "127.0.0.1"
        assert first.remote_port == conn.remote_address[1]
        assert first.remote_port != server.port
        assert first.message_path == "RoomApi.whoami"
        assert (first.message_id, second.message_id) == (1, 2)

    async def test_current_connection_and_message_in_client_handlers(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler()) as client:
            (conn,) = hub.connections
            info = await asyncio.wait_for(conn.outgoing.whoami(), WAIT)
            assert info.side == "client"
            assert info.connection_id == client.id
            assert info.path == "/ws/room"
            assert (info.remote_host, info.remote_port) == ("127.0.0.1", server.port)
            assert (info.message_path, info.message_id) == ("RoomApi.whoami", 1)

    async def test_connections_are_kept_apart(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi) as one, grestws.connect(server.url, RoomApi) as two:
            infos = await asyncio.wait_for(
                asyncio.gather(*(c.outgoing.whoami() for c in (one, two, one, two))), WAIT
            )
        ids = [info.connection_id for info in infos]
        assert ids[0] == ids[2] != ids[1] == ids[3]
        assert {ids[0], ids[1]} == {conn.id for conn in hub.connections}

    def test_outside_a_handler_is_an_error(self) -> None:
        with pytest.raises(grestws.InvalidStateError):
            grestws.current_connection()
        with pytest.raises(grestws.InvalidStateError):
            grestws.current_message()


class TestAsResult:
    async def test_ok_and_err(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with grestws.connect(server.url, RoomApi) as client:
            ok = await asyncio.wait_for(grestws.as_result(client.outgoing.post(Note(text="fine"))), WAIT)
            err = await asyncio.wait_for(
                grestws.as_result(client.outgoing.post(Note(text="x", room_id="full"))), WAIT
            )
        assert ok == grestws.Ok(Posted(note_id=1, text="fine"))
        match err:
            case grestws.Err(RoomFull(data=RoomInfo(seats=seats))):
                assert seats == 8
            case _:
                pytest.fail(f"expected Err(RoomFull), got {err!r}")

    async def test_failures_that_are_no_answer_still_raise(self, start_server: StartServer) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        async with grestws.connect(server.url, RoomApi, timeout=0.2) as client:
            with pytest.raises(grestws.RequestTimeoutError):
                await asyncio.wait_for(grestws.as_result(client.outgoing.block()), WAIT)
            hub.release.set()


class TestPaths:
    async def test_several_contracts_on_one_server(self, start_server: StartServer) -> None:
        hub = Hub()
        app = room_app(hub)
        app.add(SkewServerSide, SkewHandler)
        server = await start_server(app)
        assert sorted(server.urls()) == [server.url + "/ws/room", server.url + "/ws/skew"]
        async with (
            grestws.connect(server.url, SkewServerSide) as skew,
            grestws.connect(server.url, RoomApi) as room,
        ):
            label = await asyncio.wait_for(skew.outgoing.label(), WAIT)
            posted = await asyncio.wait_for(room.outgoing.post(Note(text="t")), WAIT)
            assert label == "not a number"
            assert posted.note_id == 1
            assert {conn.path for conn in server.connections} == {"/ws/skew", "/ws/room"}
        assert [conn.path for conn in hub.connections] == ["/ws/room"]

    async def test_base_url_with_a_path_prefix_and_trailing_slash(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        client = grestws.Client(server.url + "/", RoomApi)
        assert client.url == server.url + "/ws/room"
        async with client:
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0


class TestClientOnTheWire:
    async def test_frames_the_client_sends(self) -> None:
        received: asyncio.Queue[str] = asyncio.Queue()
        answers = {
            "RoomApi.count": "41",
            "RoomApi.post": '{"noteId":7,"text":"hello"}',
        }

        async def peer(ws: RawServerConnection) -> None:
            async for text in ws:
                assert isinstance(text, str)
                received.put_nowait(text)
                kind, path, id, _ = text.split(":", 3)
                if kind == "h":
                    await ws.send("k:::null")
                    await ws.send("r:RoomApi.confirm:1:")
                elif kind == "r":
                    await ws.send(f's:{path}:{id}:{{"success":true,"type":"OK","data":{answers[path]}}}')

        async with ws_serve(peer, "127.0.0.1", 0) as plain:
            port = next(iter(plain.sockets)).getsockname()[1]
            handler = RoomClientHandler()
            async with grestws.connect(
                f"ws://127.0.0.1:{port}", RoomApi, handlers=handler, headers={"token": "t"}
            ) as client:
                assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 41
                posted = await asyncio.wait_for(client.outgoing.post(Note(text="hello")), WAIT)
                assert posted == Posted(note_id=7, text="hello")
                await asyncio.wait_for(client.outgoing.poke(), WAIT)
                frames = [await next_item(received) for _ in range(5)]
        assert frames[0] == 'h:::{"token":"t"}'
        # the server's request 1 and the client's request 1 are told apart by direction
        assert set(frames[1:]) == {
            's:RoomApi.confirm:1:{"success":true,"type":"OK","data":true}',
            "r:RoomApi.count:1:",
            'r:RoomApi.post:2:{"text":"hello","roomId":"lobby"}',
            "m:RoomApi.poke::",
        }
