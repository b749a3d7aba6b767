"""Mistakes in server code that the checkers must reject, each on the line that makes it.

A line ending in ``# E: <codes>`` must get exactly those error codes (mypy's codes and
pyright's ``report*`` rules); every other line must get none. See ``test_typing.py``.
"""

from __future__ import annotations

import grestws
from examples.chat.contract import (
    TypingRequest,
    ChatApi,
    ChatClient,
    ChatServer,
    DeleteMessageRequest,
    MarkAsReadRequest,
    Message,
    SendMessageRequest,
    SendMessageResponse,
    WhoIsHereRequest,
)

REQ = SendMessageRequest(text="hi", channel_id="general")
MSG = Message(id="1", text="hi", sender_id="me", timestamp=0)
REPLY = SendMessageResponse(success=True, message_id="1")


class WrongParameter:
    """Structural handler whose send_message takes the wrong type."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: MarkAsReadRequest) -> SendMessageResponse:
        return REPLY

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


class WrongReturn:
    """Structural handler whose send_message answers the wrong type."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> bool:
        return True

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


class MissingMethod:
    """Structural handler without ping."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        return REPLY

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        pass


class SyncMethod:
    """Structural handler whose ping is not a coroutine function."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        return REPLY

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        pass

    def ping(self) -> None:
        pass


class WrongConnection:
    """Structural handler that expects a connection to the wrong half."""

    def __init__(self, conn: grestws.ServerConnection[ChatServer]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        return REPLY

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


class RenamedParameter:
    """Structural handler that names send_message's parameter differently.

    The stub's ``req`` may be passed by keyword, so pyright holds the handler to the name;
    mypy does not compare parameter names here.
    """

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, request: SendMessageRequest) -> SendMessageResponse:
        return REPLY

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


class SubclassWrongParameter(ChatServer):
    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: MarkAsReadRequest) -> SendMessageResponse:  # E: override reportIncompatibleMethodOverride
        return REPLY

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


class SubclassWrongReturn(ChatServer):
    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> bool:  # E: override reportIncompatibleMethodOverride
        return True

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


class SubclassMistakes(ChatServer):
    """Handler whose bodies misuse the connection to the client."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        await self.conn.outgoing.new_message(REQ)  # E: arg-type reportArgumentType
        await self.conn.outgoing.are_you_there(MSG)  # E: call-arg reportCallIssue
        await self.conn.outgoing.send_message(REQ)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
        await self.conn.outgoing.broadcast(MSG)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
        await self.conn.with_timeout(1.0).broadcast(MSG)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
        self.conn.outgoing.new_message(MSG)  # E: unused-coroutine reportUnusedCoroutine
        self.conn.outgoing.are_you_there()  # E: unused-coroutine reportUnusedCoroutine
        answer: str = await self.conn.outgoing.are_you_there()  # E: assignment reportAssignmentType
        print(answer)
        return MSG  # E: return-value reportReturnType

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        return req  # E: return-value reportReturnType

    async def ping(self) -> None:
        pass

    async def is_typing(self, req: TypingRequest) -> None:
        pass

    async def who_is_here(self, req: WhoIsHereRequest) -> list[str]:
        return []

    async def delete_message(self, req: DeleteMessageRequest) -> bool:
        return False


class Fine(ChatServer):
    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        return REPLY

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


Reversed = grestws.SocketContract("Reversed", client_to_server=ChatClient, server_to_client=ChatServer)

app = grestws.App()
app.add(ChatApi, WrongParameter)  # E: arg-type reportArgumentType
app.add(ChatApi, WrongReturn)  # E: arg-type reportArgumentType
app.add(ChatApi, MissingMethod)  # E: arg-type reportArgumentType
app.add(ChatApi, SyncMethod)  # E: arg-type reportArgumentType
app.add(ChatApi, WrongConnection)  # E: arg-type reportArgumentType
app.add(ChatApi, RenamedParameter)  # E: reportArgumentType
app.add(ChatApi, lambda conn: conn)  # E: arg-type return-value reportArgumentType
app.add(Reversed.at("/ws/reversed"), Fine)  # E: arg-type reportArgumentType
app.add(ChatApi, Fine)
# A handler that subclasses the Protocol is a ChatServer by declaration: its mistakes are
# reported at the overriding method above, not again here.
app.add(ChatApi, SubclassWrongParameter)
app.add(ChatApi, SubclassWrongReturn)


def add_an_instance(conn: grestws.ServerConnection[ChatClient]) -> None:
    app.add(ChatApi, Fine(conn))  # E: arg-type reportArgumentType
