"""The wire protocol seen from a hand-written peer: raw text frames over websockets.

Run from the repository root: ``python docs/examples/protocol.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any, Protocol

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import grestws

# -- A grestws server with the chat contract ---------------------------------------------


class SendMessageRequest(msgspec.Struct, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    channel_id: str


class SendMessageResponse(msgspec.Struct, rename="camel"):
    success: bool
    message_id: str


class MarkAsReadRequest(msgspec.Struct, rename="camel"):
    message_id: str


class Message(msgspec.Struct, rename="camel"):
    id: str
    text: str
    sender_id: str
    timestamp: int


class ChatServer(Protocol):
    @grestws.request
    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse: ...

    @grestws.notify
    async def mark_as_read(self, req: MarkAsReadRequest) -> None: ...

    @grestws.notify
    async def ping(self) -> None: ...


class ChatClient(Protocol):
    @grestws.notify
    async def new_message(self, msg: Message) -> None: ...

    @grestws.request
    async def are_you_there(self) -> bool: ...


ChatApi = grestws.SocketContract(
    "ChatApi", client_to_server=ChatServer, server_to_client=ChatClient, rename="camel"
).at("/ws/chat")


class ChatHandler(ChatServer):
    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        if conn.handshake_headers.get("authorization") != "Bearer demo":
            raise grestws.NotAuthorizedError("Missing token")
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        message = Message(id="m1", text=req.text, sender_id="u1", timestamp=1700000000000)
        await self.conn.outgoing.new_message(message)
        return SendMessageResponse(success=True, message_id=message.id)

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        pass

    async def ping(self) -> None:
        alive = await self.conn.outgoing.are_you_there()
        assert alive is True


app = grestws.App(handshake_timeout=0.3)
app.add(ChatApi, ChatHandler)

# -- A peer that speaks the frames by hand -----------------------------------------------


async def send(ws: ClientConnection, frame: str) -> None:
    print(">", frame)
    await ws.send(frame)


async def receive(ws: ClientConnection) -> tuple[str, str, str, Any]:
    """The next frame, split into type, path, id and decoded data."""
    frame = await asyncio.wait_for(ws.recv(), timeout=5)
    assert isinstance(frame, str)  # every frame is a text frame
    print("<", frame)
    kind, path, frame_id, data = frame.split(":", 3)
    return kind, path, frame_id, json.loads(data) if data else None


async def main() -> None:
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        url = server.url + "/ws/chat"

        print("-- handshake, a request, a push, a message, a ping")
        async with websockets_connect(url) as ws:
            await send(ws, 'h:::{"authorization":"Bearer demo"}')
            assert await receive(ws) == ("k", "", "", None)

            await send(ws, 'r:ChatApi.sendMessage:1:{"text":"hi","channelId":"general"}')
            kind, path, _, pushed = await receive(ws)
            assert (kind, path, pushed["text"]) == ("m", "ChatApi.newMessage", "hi")
            kind, path, frame_id, result = await receive(ws)
            assert (kind, path, frame_id) == ("s", "ChatApi.sendMessage", "1")
            assert result == {"success": True, "type": "OK", "data": {"success": True, "messageId": "m1"}}

            await send(ws, 'm:ChatApi.markAsRead::{"messageId":"m1"}')  # no answer, ever
            await send(ws, "p:::")
            assert await receive(ws) == ("o", "", "", None)

            print("-- errors: invalid input, unknown method")
            await send(ws, 'r:ChatApi.sendMessage:2:{"text":"","channelId":"general"}')
            _, _, frame_id, error = await receive(ws)
            assert (frame_id, error["type"], error["statusCode"]) == ("2", "VALIDATION_ERROR", 422)
            assert error["data"][0]["path"] == "text"
            await send(ws, "r:ChatApi.deleteMessage:3:{}")
            _, _, _, error = await receive(ws)
            assert error["type"] == "ROUTE_NOT_FOUND"

            print("-- the server calls the client; its ids are its own")
            await send(ws, "m:ChatApi.ping::")
            kind, path, frame_id, _ = await receive(ws)
            assert (kind, path, frame_id) == ("r", "ChatApi.areYouThere", "1")
            await send(ws, f's:{path}:{frame_id}:{{"success":true,"type":"OK","data":true}}')

        print("-- a refused handshake")
        async with websockets_connect(url) as ws:
            await send(ws, "h:::{}")
            kind, _, _, error = await receive(ws)
            assert (kind, error["type"]) == ("x", "NOT_AUTHORIZED")
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            print("closed:", ws.close_code, ws.close_reason)
            assert ws.close_code == 4001

        print("-- no handshake frame within the server's handshake_timeout")
        async with websockets_connect(url) as ws:
            kind, _, _, error = await receive(ws)
            assert (kind, error["type"]) == ("x", "SERVER_ERROR")
            assert error["context"]["displayMessage"] == "Handshake timeout"
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001

        print("-- a URL path nobody serves")
        try:
            async with websockets_connect(server.url + "/ws/other"):
                pass
        except InvalidStatus as exc:
            print("HTTP", exc.response.status_code)


if __name__ == "__main__":
    asyncio.run(main())
