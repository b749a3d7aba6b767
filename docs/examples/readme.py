"""The README's example: a chat contract, a server that wants a bearer token, and a client
that sends a message with one and prints what the server pushes.

Run from the repository root: ``python docs/examples/readme.py`` serves the chat on a free
port of 127.0.0.1 and talks to it; ``python docs/examples/readme.py ws://127.0.0.1:8765``
talks to ``grestws serve examples.chat.server:app --port 8765`` instead.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Protocol

import msgspec

import grestws


class SendMessageRequest(msgspec.Struct, rename="camel"):
    text: str
    channel_id: str


class SendMessageResponse(msgspec.Struct, rename="camel"):
    success: bool
    message_id: str


class Message(msgspec.Struct, rename="camel"):
    id: str
    text: str
    sender_id: str
    timestamp: int


class ChatServer(Protocol):
    @grestws.request
    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse: ...


class ChatClient(Protocol):
    @grestws.notify
    async def new_message(self, msg: Message) -> None: ...


ChatApi = grestws.SocketContract(
    "ChatApi", client_to_server=ChatServer, server_to_client=ChatClient, rename="camel"
).at("/ws/chat")


class Printer(ChatClient):
    """Prints what the server pushes."""

    async def new_message(self, msg: Message) -> None:
        print(f"[{msg.sender_id}] {msg.text}")


async def chat(url: str) -> None:
    schema = ChatApi.use(grestws.BearerAuth("secret-alice"))  # the chat server wants a token
    async with grestws.connect(url, schema, handlers=Printer()) as client:
        reply = await client.outgoing.send_message(SendMessageRequest(text="hi", channel_id="general"))
        print("sent", reply.message_id)


# The server side, as examples/chat/server.py has it in full: ``secret-<name>`` is user <name>.


async def verify(token: str) -> grestws.Identity | None:
    name = token.removeprefix("secret-")
    return grestws.Identity(name) if token.startswith("secret-") and name else None


class ChatHandler(ChatServer):
    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        sender = self.conn.identity.id if self.conn.identity is not None else "anonymous"
        message = Message(uuid.uuid4().hex, req.text, sender, time.time_ns() // 1_000_000)
        await self.conn.outgoing.new_message(message)
        return SendMessageResponse(success=True, message_id=message.id)


app = grestws.App()
app.add(ChatApi.use(grestws.BearerAuth(verify=verify)), ChatHandler)


async def main(args: list[str]) -> None:
    if args:
        await chat(args[0])
        return
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        await chat(server.url)
        try:
            await grestws.connect(server.url, ChatApi)  # no token
        except grestws.NotAuthorizedError as exc:
            print("without a token:", exc)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
