"""PROTOCOL.md spoken by hand: a plain websockets client against the chat example.

No grestws client code here: every frame is written and read as text, so these tests hold
the server to the wire format a TypeScript or browser peer relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

import grestws
from examples.chat.contract import ChatClient, ChatServer, SendMessageRequest, SendMessageResponse
from examples.chat.server import ServerChatApi
from examples.chat.server import app as chat_app
from tests.conftest import StartServer
from tests.servers import ServedApp
from tests.support import Hub, RoomApi, room_app

WAIT = 5.0

Frame = tuple[str, str, str, Any]


ALICE = 'h:::{"authorization":"Bearer secret-alice"}'
"""The handshake of user alice: the example server takes ``secret-<name>`` as user <name>."""


def parse(text: str | bytes) -> Frame:
    """``<type>:<path>:<id>:<data>`` with the data decoded (None when empty)."""
    assert isinstance(text, str), "frames are text frames"
    kind, path, id, data = text.split(":", 3)
    return kind, path, id, json.loads(data) if data else None


@contextlib.asynccontextmanager
async def chat_socket(server: ServedApp, path: str = "/ws/chat") -> AsyncIterator[ClientConnection]:
    """A plain socket at ``path`` that has done the handshake as user alice (``k:::null``)."""
    async with ws_connect(server.url + path, open_timeout=WAIT) as ws:
        await ws.send(ALICE)
        assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
        yield ws


async def receive(ws: ClientConnection) -> Frame:
    return parse(await asyncio.wait_for(ws.recv(), WAIT))


async def assert_nothing_pending(ws: ClientConnection) -> None:
    """Prove no other frame is on its way: a ping's pong is the next thing received."""
    await ws.send("p:::")
    assert await asyncio.wait_for(ws.recv(), WAIT) == "o:::"


def assert_error_envelope(data: Any, type: str, status_code: int) -> None:
    assert data["success"] is False
    assert data["type"] == type
    assert data["statusCode"] == status_code
    context = data["context"]
    assert set(context) <= {"displayMessage", "timestamp", "ref"}
    assert isinstance(context["timestamp"], int)
    assert context["timestamp"] > 1_600_000_000_000


@pytest.fixture
async def chat(start_server: StartServer) -> ServedApp:
    return await start_server(chat_app)


class TestHandshake:
    async def test_h_with_a_token_is_answered_k(self, chat: ServedApp) -> None:
        async with ws_connect(chat.url + "/ws/chat") as ws:
            await ws.send(ALICE)
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"

    async def test_h_with_more_headers(self, chat: ServedApp) -> None:
        async with ws_connect(chat.url + "/ws/chat") as ws:
            await ws.send('h:::{"authorization":"Bearer secret-hand","x-client":"hand"}')
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"

    @pytest.mark.parametrize(
        ("frame", "message"),
        [
            ("h:::", "A bearer token is required"),
            ("h:::{}", "A bearer token is required"),
            ('h:::{"authorization":"Bearer forged"}', "Invalid token"),
        ],
    )
    async def test_h_without_a_good_token_is_refused(self, chat: ServedApp, frame: str, message: str) -> None:
        async with ws_connect(chat.url + "/ws/chat") as ws:
            await ws.send(frame)
            kind, path, id, data = parse(await asyncio.wait_for(ws.recv(), WAIT))
            assert (kind, path, id) == ("x", "", "")
            assert_error_envelope(data, "NOT_AUTHORIZED", 401)
            assert data["context"]["displayMessage"] == message
            await asyncio.wait_for(ws.wait_closed(), WAIT)
            assert (ws.close_code, ws.close_reason) == (4001, "Handshake failed")


class TestCalls:
    async def test_send_message_pushes_and_answers(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send('r:ChatApi.sendMessage:1:{"text":"hi","channelId":"general"}')
            frames = {frame[0]: frame for frame in [await receive(ws), await receive(ws)]}
            assert frames.keys() == {"m", "s"}

            _, path, id, push = frames["m"]
            assert (path, id) == ("ChatApi.newMessage", "")
            assert set(push) == {"id", "text", "senderId", "timestamp"}
            assert push["text"] == "hi"
            assert isinstance(push["senderId"], str)
            assert push["senderId"]
            assert isinstance(push["timestamp"], int)

            _, path, id, result = frames["s"]
            assert (path, id) == ("ChatApi.sendMessage", "1")
            assert result == {
                "success": True,
                "type": "OK",
                "data": {"success": True, "messageId": push["id"]},
            }
            await assert_nothing_pending(ws)

    async def test_push_reaches_every_connection(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as alice, chat_socket(chat) as bob:
            await alice.send('r:ChatApi.sendMessage:1:{"text":"to all","channelId":"general"}')
            kinds = sorted([(await receive(alice))[0], (await receive(alice))[0]])
            assert kinds == ["m", "s"]
            kind, path, _, push = await receive(bob)
            assert (kind, path, push["text"]) == ("m", "ChatApi.newMessage", "to all")
            await assert_nothing_pending(bob)

    async def test_colons_inside_the_data(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send('r:ChatApi.sendMessage:1:{"text":"a:b::c:","channelId":"x:y"}')
            frames = {frame[0]: frame for frame in [await receive(ws), await receive(ws)]}
            assert frames["m"][3]["text"] == "a:b::c:"
            assert frames["s"][3]["success"] is True

    async def test_text_beyond_ascii(self, chat: ServedApp) -> None:
        text = 'héllo wörld, 日本語, 🌍, \\ " \n'
        async with chat_socket(chat) as ws:
            payload = json.dumps({"text": text, "channelId": "général"}, ensure_ascii=False)
            await ws.send(f"r:ChatApi.sendMessage:1:{payload}")
            frames = {frame[0]: frame for frame in [await receive(ws), await receive(ws)]}
            assert frames["m"][3]["text"] == text
            assert frames["s"][3]["success"] is True

    async def test_empty_text_is_a_validation_error(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send('r:ChatApi.sendMessage:1:{"text":"","channelId":"general"}')
            kind, path, id, data = await receive(ws)
            assert (kind, path, id) == ("s", "ChatApi.sendMessage", "1")
            assert_error_envelope(data, "VALIDATION_ERROR", 422)
            [issue] = data["data"]
            assert set(issue) == {"path", "code", "message"}
            assert issue["path"] == "text"
            assert issue["message"]
            await assert_nothing_pending(ws)

    async def test_issue_paths_use_wire_names(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send('r:ChatApi.sendMessage:1:{"text":"hi"}')
            *_, data = await receive(ws)
            assert_error_envelope(data, "VALIDATION_ERROR", 422)
            assert [(i["path"], i["code"]) for i in data["data"]] == [("channelId", "missing_field")]

    async def test_unknown_route(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send("r:ChatApi.nope:2:{}")
            kind, path, id, data = await receive(ws)
            assert (kind, path, id) == ("s", "ChatApi.nope", "2")
            assert_error_envelope(data, "ROUTE_NOT_FOUND", 404)
            assert data["context"]["displayMessage"] == "Route not found: ChatApi.nope"
            await ws.send('r:ChatApi.sendMessage:3:{"text":"still here","channelId":"general"}')
            frames = {frame[0]: frame for frame in [await receive(ws), await receive(ws)]}
            assert frames["s"][2] == "3"

    async def test_messages_get_no_reply(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send('m:ChatApi.markAsRead::{"messageId":"x"}')
            await ws.send("m:ChatApi.ping::")
            await ws.send('m:ChatApi.markAsRead::{"wrong":1}')
            await ws.send("m:ChatApi.nope::{}")
            await assert_nothing_pending(ws)

    async def test_ping_pong(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send("p:::")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "o:::"

    async def test_a_late_response_is_ignored(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            await ws.send('s:ChatApi.areYouThere:77:{"success":true,"type":"OK","data":true}')
            await assert_nothing_pending(ws)

    async def test_garbage_is_ignored_or_answered(self, chat: ServedApp) -> None:
        async with chat_socket(chat) as ws:
            junk_frames: list[str | bytes] = [
                b"\x00\x01\xfe\xff",
                "zzz",
                "r:X",
                "r:ChatApi.sendMessage:abc:{}",
                "s:X:999:{}",
                'r:ChatApi.sendMessage:99999999999999999999999999:{"text":"x","channelId":"c"}',
                "m:ChatApi.ping:1:",
                "r::1:{}",
            ]
            for junk in junk_frames:
                await ws.send(junk)
            await ws.send("r:ChatApi.sendMessage:5:{not json")
            kind, path, id, data = await receive(ws)
            assert (kind, path, id) == ("s", "ChatApi.sendMessage", "5")
            assert_error_envelope(data, "VALIDATION_ERROR", 422)
            assert data["data"][0]["code"] == "invalid_json"
            await assert_nothing_pending(ws)
            await ws.send('r:ChatApi.sendMessage:6:{"text":"still fine","channelId":"general"}')
            frames = {frame[0]: frame for frame in [await receive(ws), await receive(ws)]}
            assert frames["s"][2] == "6"
            assert frames["s"][3]["success"] is True

    async def test_result_without_data_omits_it(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        async with chat_socket(server, RoomApi.path) as ws:
            await ws.send("r:RoomApi.clear:1:")
            assert await asyncio.wait_for(ws.recv(), WAIT) == 's:RoomApi.clear:1:{"success":true,"type":"OK"}'
            await ws.send("r:RoomApi.count:2:")
            assert (
                await asyncio.wait_for(ws.recv(), WAIT)
                == 's:RoomApi.count:2:{"success":true,"type":"OK","data":0}'
            )


class AskingHandler(ChatServer):
    """Answers ``sendMessage`` by asking the client ``areYouThere`` first."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        there = await self.conn.outgoing.are_you_there()
        return SendMessageResponse(success=there, message_id=req.text)


@pytest.fixture
async def asking(start_server: StartServer) -> ServedApp:
    app = grestws.App()
    app.add(ServerChatApi, AskingHandler)
    return await start_server(app)


class TestServerRequests:
    async def test_hand_written_answer_is_accepted(self, asking: ServedApp) -> None:
        async with chat_socket(asking) as ws:
            for n, answer in [(1, "true"), (2, "false"), (3, "true")]:
                await ws.send(f'r:ChatApi.sendMessage:{n}:{{"text":"m{n}","channelId":"general"}}')
                # the server numbers its own requests: its ids match ours only by coincidence
                assert await asyncio.wait_for(ws.recv(), WAIT) == f"r:ChatApi.areYouThere:{n}:"
                await ws.send(f's:ChatApi.areYouThere:{n}:{{"success":true,"type":"OK","data":{answer}}}')
                kind, path, id, data = await receive(ws)
                assert (kind, path, id) == ("s", "ChatApi.sendMessage", str(n))
                assert data == {
                    "success": True,
                    "type": "OK",
                    "data": {"success": answer == "true", "messageId": f"m{n}"},
                }

    async def test_ids_are_independent_per_direction(self, asking: ServedApp) -> None:
        async with chat_socket(asking) as ws:
            for n in (40, 41, 7):
                await ws.send(f'r:ChatApi.sendMessage:{n}:{{"text":"x","channelId":"c"}}')
            asked = [parse(await asyncio.wait_for(ws.recv(), WAIT)) for _ in range(3)]
            assert sorted(frame[2] for frame in asked) == ["1", "2", "3"]
            assert {frame[:2] for frame in asked} == {("r", "ChatApi.areYouThere")}
            for _, _, id, _ in reversed(asked):
                await ws.send(f's:ChatApi.areYouThere:{id}:{{"success":true,"type":"OK","data":true}}')
            answers = [await receive(ws) for _ in range(3)]
            assert sorted(frame[2] for frame in answers) == ["40", "41", "7"]
            assert all(frame[3]["success"] is True for frame in answers)

    @pytest.mark.logs_errors
    async def test_error_answer_from_the_client(self, asking: ServedApp) -> None:
        async with chat_socket(asking) as ws:
            await ws.send('r:ChatApi.sendMessage:1:{"text":"x","channelId":"c"}')
            _, _, id, _ = await receive(ws)
            await ws.send(
                f's:ChatApi.areYouThere:{id}:{{"success":false,"type":"SERVER_ERROR","statusCode":500}}'
            )
            kind, path, rid, data = await receive(ws)
            assert (kind, path, rid) == ("s", "ChatApi.sendMessage", "1")
            assert data["success"] is False
            assert data["type"] == "SERVER_ERROR"
