"""Declaring contracts: halves, wire names, payload Structs and constraints.

Run from the repository root: ``python docs/examples/contracts.py``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal, Protocol

import msgspec

import grestws

# -- Payloads ----------------------------------------------------------------------------

ChannelId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]{1,32}$")]


class SendMessageRequest(msgspec.Struct, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    channel_id: ChannelId
    reply_to: str | None = None
    priority: Literal["low", "normal", "high"] = "normal"


class SendMessageResponse(msgspec.Struct, rename="camel"):
    message_id: str
    position: Annotated[int, msgspec.Meta(ge=0)]


# -- The two halves ----------------------------------------------------------------------


class ChatServer(Protocol):
    @grestws.request
    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse: ...

    @grestws.request(name="listChannels")
    async def channels(self) -> list[ChannelId]: ...

    @grestws.notify
    async def mark_as_read(self, message_id: str) -> None: ...


class ChatClient(Protocol):
    @grestws.request
    async def are_you_there(self) -> bool: ...


ChatContract = grestws.SocketContract(
    "ChatApi", client_to_server=ChatServer, server_to_client=ChatClient, rename="camel"
)
ChatApi = ChatContract.at("/ws/chat")

# -- A declaration that cannot work is refused when it is made ---------------------------


class Undecorated(Protocol):
    async def forgot_the_decorator(self) -> None: ...


# -- A server for the contract -----------------------------------------------------------


class ChatHandler(ChatServer):
    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.count = 0

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        self.count += 1
        return SendMessageResponse(message_id=f"m{self.count}", position=self.count)

    async def channels(self) -> list[str]:
        return ["general", "random"]

    async def mark_as_read(self, message_id: str) -> None:
        pass


app = grestws.App()
app.add(ChatApi, ChatHandler)


async def main() -> None:
    # Wire paths: "<contract name>.<wire name>".
    paths = [spec.path for spec in ChatContract.client_to_server]
    print("client -> server:", paths)
    assert paths == ["ChatApi.sendMessage", "ChatApi.listChannels", "ChatApi.markAsRead"]
    assert [spec.path for spec in ChatContract.server_to_client] == ["ChatApi.areYouThere"]

    # Payload fields: snake_case in Python, camelCase in JSON.
    wire = msgspec.json.encode(SendMessageRequest(text="hi", channel_id="general"))
    print("payload on the wire:", wire.decode())
    assert wire == b'{"text":"hi","channelId":"general","replyTo":null,"priority":"normal"}'

    try:
        grestws.SocketContract("Broken", client_to_server=Undecorated, server_to_client=ChatClient)
    except grestws.ContractError as error:
        print("refused declaration:", error)

    async with (
        grestws.serve(app, "127.0.0.1", 0) as server,
        grestws.connect(server.url, ChatApi) as client,
    ):
        reply = await client.outgoing.send_message(SendMessageRequest(text="hi", channel_id="general"))
        assert reply == SendMessageResponse(message_id="m1", position=1)
        assert await client.outgoing.channels() == ["general", "random"]
        await client.outgoing.mark_as_read(reply.message_id)

        # Constraints are checked by the receiving side, before the handler runs.
        bad = SendMessageRequest(text="hi", channel_id="General Chat", priority="high")
        try:
            await client.outgoing.send_message(bad)
        except grestws.ValidationError as error:
            issue = error.data[0]
            print(f"invalid: path={issue.path!r} code={issue.code!r} message={issue.message!r}")
            assert issue.path == "channelId"


if __name__ == "__main__":
    asyncio.run(main())
