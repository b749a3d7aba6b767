"""What the checkers infer for user code written against the chat example's contract.

Each ``reveal_type`` line ends with the type both checkers must print, as described in
``test_typing.py``. The functions are never called; importing the module runs nothing.
"""

from __future__ import annotations

from typing import reveal_type

import grestws
from examples.chat.contract import (
    ChatApi,
    ChatClient,
    ChatContract,
    ChatServer,
    DeleteMessageRequest,
    MarkAsReadRequest,
    Message,
    SendMessageRequest,
    SendMessageResponse,
    TypingEvent,
    TypingRequest,
    WhoIsHereRequest,
)

REQ = SendMessageRequest(text="hi", channel_id="general")
MSG = Message(id="1", text="hi", sender_id="me", timestamp=0)


async def contract_and_schema() -> None:
    reveal_type(ChatContract)  # R: SocketContract[ChatServer, ChatClient]
    reveal_type(ChatApi)  # R: SocketSchema[ChatServer, ChatClient, None]
    reveal_type(ChatContract.at("/elsewhere"))  # R: SocketSchema[ChatServer, ChatClient, None]
    contract = grestws.SocketContract("Chat2", client_to_server=ChatServer, server_to_client=ChatClient)
    reveal_type(contract)  # R: SocketContract[ChatServer, ChatClient]
    reveal_type(ChatClient.new_message)  # R: (self: ChatClient, msg: Message) -> Coroutine[Any, Any, None]
    reveal_type(ChatClient.are_you_there)  # R: (self: ChatClient) -> Coroutine[Any, Any, bool]


async def connecting() -> None:
    opening = grestws.connect("ws://127.0.0.1:8765", ChatApi)
    reveal_type(opening)  # R: Opening[Client[ChatServer, ChatClient]]
    client = await opening
    reveal_type(client)  # R: Client[ChatServer, ChatClient]
    async with grestws.connect("ws://127.0.0.1:8765", ChatApi, handlers=Printer()) as entered:
        reveal_type(entered)  # R: Client[ChatServer, ChatClient]
    reveal_type(grestws.Client("ws://127.0.0.1:8765", ChatApi))  # R: Client[ChatServer, ChatClient]


async def client_calls(client: grestws.Client[ChatServer, ChatClient]) -> None:
    reveal_type(client.outgoing)  # R: ChatServer
    send = client.outgoing.send_message
    reveal_type(send)  # R: (req: SendMessageRequest) -> Coroutine[Any, Any, SendMessageResponse]
    reply = await client.outgoing.send_message(REQ)
    reveal_type(reply)  # R: SendMessageResponse
    reveal_type(reply.message_id)  # R: str
    reveal_type(reply.success)  # R: bool
    reveal_type(await client.outgoing.mark_as_read(MarkAsReadRequest(message_id="1")))  # R: None
    reveal_type(await client.outgoing.ping())  # R: None
    hurried = client.with_timeout(0.5)
    reveal_type(hurried)  # R: ChatServer
    reveal_type(await hurried.send_message(REQ))  # R: SendMessageResponse
    reveal_type(client.with_timeout(None))  # R: ChatServer


async def results(client: grestws.Client[ChatServer, ChatClient], alias: grestws.Result[int]) -> None:
    reveal_type(alias)  # R: Ok[int] | Err
    result = await grestws.as_result(client.outgoing.send_message(REQ))
    reveal_type(result)  # R: Ok[SendMessageResponse] | Err
    match result:
        case grestws.Ok(value):
            reveal_type(value)  # R: SendMessageResponse
        case grestws.Err(grestws.ValidationError() as invalid):
            reveal_type(invalid)  # R: ValidationError
            reveal_type(invalid.data)  # R: list[Issue]
        case grestws.Err(error):
            reveal_type(error)  # R: ApiError[object]
    if isinstance(result, grestws.Ok):
        reveal_type(result)  # R: Ok[SendMessageResponse]
        reveal_type(result.value)  # R: SendMessageResponse
    else:
        reveal_type(result)  # R: Err
        reveal_type(result.error)  # R: ApiError[object]
    nothing = await grestws.as_result(client.outgoing.ping())
    reveal_type(nothing)  # R: Ok[None] | Err


async def caught(client: grestws.Client[ChatServer, ChatClient]) -> None:
    try:
        await client.outgoing.send_message(REQ)
    except grestws.ValidationError as exc:
        reveal_type(exc.data)  # R: list[Issue]
        reveal_type(exc.data[0].path)  # R: str
    except grestws.NotFoundError as exc:
        reveal_type(exc.data)  # R: None
    except grestws.ApiError as exc:
        # The base class names no data type: mypy fills it with Any, pyright with the default.
        reveal_type(exc.data)  # R[mypy]: Any  # R[pyright]: None
    except grestws.RequestTimeoutError as exc:
        reveal_type(exc.timeout)  # R: float


class Printer(ChatClient):
    """A client-side handler that subclasses its Protocol."""

    async def new_message(self, msg: Message) -> None:
        pass

    async def typing(self, event: TypingEvent) -> None:
        pass

    async def are_you_there(self) -> bool:
        return True


class Handler(ChatServer):
    """A server-side handler that subclasses its Protocol and calls back to the client."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        reveal_type(self.conn)  # R: ServerConnection[ChatClient]
        reveal_type(self.conn.outgoing)  # R: ChatClient
        there = await self.conn.outgoing.are_you_there()
        reveal_type(there)  # R: bool
        reveal_type(await self.conn.outgoing.new_message(MSG))  # R: None
        hurried = self.conn.with_timeout(1.0)
        reveal_type(hurried)  # R: ChatClient
        reveal_type(await hurried.are_you_there())  # R: bool
        answer = await grestws.as_result(self.conn.outgoing.are_you_there())
        reveal_type(answer)  # R: Ok[bool] | Err
        return SendMessageResponse(success=there, message_id=req.channel_id)

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def is_typing(self, req: TypingRequest) -> None:
        pass

    async def who_is_here(self, req: WhoIsHereRequest) -> list[str]:
        return []

    async def delete_message(self, req: DeleteMessageRequest) -> bool:
        return False


class StructuralHandler:
    """A server-side handler that only matches the Protocol's shape."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        return SendMessageResponse(success=True, message_id=req.text)

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def is_typing(self, req: TypingRequest) -> None:
        pass

    async def who_is_here(self, req: WhoIsHereRequest) -> list[str]:
        return []

    async def delete_message(self, req: DeleteMessageRequest) -> bool:
        return False


async def serving() -> None:
    app = grestws.App()
    app.add(ChatApi, Handler)
    app.add(ChatContract.at("/ws/structural"), StructuralHandler)
    app.add(ChatContract.at("/ws/factory"), lambda conn: Handler(conn))
    opening = grestws.serve(app, "127.0.0.1", 0)
    reveal_type(opening)  # R: Opening[Server]
    server = await opening
    reveal_type(server)  # R: Server
    reveal_type(server.connections)  # R: set[ServerConnection[Any]]
