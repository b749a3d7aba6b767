"""A chat contract, its server and a client, in one process.

Run from the repository root: ``python docs/examples/quickstart.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Protocol

import msgspec

import grestws

# -- 1. The contract ---------------------------------------------------------------------


class SendMessageRequest(msgspec.Struct, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1)]
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
    """What a client may call on the server."""

    @grestws.request
    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse: ...


class ChatClient(Protocol):
    """What the server may call on a client."""

    @grestws.notify
    async def new_message(self, msg: Message) -> None: ...


ChatContract = grestws.SocketContract(
    "ChatApi", client_to_server=ChatServer, server_to_client=ChatClient, rename="camel"
)
ChatApi = ChatContract.at("/ws/chat")

# -- 2. The server -----------------------------------------------------------------------

members: set[grestws.ServerConnection[ChatClient]] = set()


class ChatHandler(ChatServer):
    """One instance per connection."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn
        members.add(conn)
        conn.on_close(lambda code, reason: members.discard(conn))

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        message = Message(
            id=uuid.uuid4().hex,
            text=req.text,
            sender_id=self.conn.id,
            timestamp=time.time_ns() // 1_000_000,
        )
        grestws.broadcast(members, ChatClient.new_message, message)
        return SendMessageResponse(success=True, message_id=message.id)


app = grestws.App()
app.add(ChatApi, ChatHandler)

# -- 3. The client -----------------------------------------------------------------------


class Printer(ChatClient):
    """Serves the server's calls on the client."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[Message] = asyncio.Queue()

    async def new_message(self, msg: Message) -> None:
        print(f"pushed to the client: {msg.text!r}")
        self.received.put_nowait(msg)


async def main() -> None:
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        printer = Printer()
        async with grestws.connect(server.url, ChatApi, handlers=printer) as client:
            reply = await client.outgoing.send_message(SendMessageRequest(text="Hello", channel_id="general"))
            print(f"sent, message id {reply.message_id}")
            pushed = await asyncio.wait_for(printer.received.get(), timeout=5)
            assert pushed.id == reply.message_id

            try:
                await client.outgoing.send_message(SendMessageRequest(text="", channel_id="general"))
            except grestws.ValidationError as error:
                issue = error.data[0]
                print(f"refused by the server: {issue.path}: {issue.message}")
                assert issue.path == "text"


if __name__ == "__main__":
    asyncio.run(main())
