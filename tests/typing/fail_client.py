"""Mistakes in client code that the checkers must reject, each on the line that makes it.

A line ending in ``# E: <codes>`` must get exactly those error codes (mypy's codes and
pyright's ``report*`` rules); every other line must get none. See ``test_typing.py``.
"""

from __future__ import annotations

import grestws
from examples.chat.contract import (
    ChatApi,
    ChatClient,
    ChatContract,
    ChatServer,
    MarkAsReadRequest,
    Message,
    SendMessageRequest,
    TypingEvent,
)

REQ = SendMessageRequest(text="hi", channel_id="general")
MSG = Message(id="1", text="hi", sender_id="me", timestamp=0)


async def wrong_arguments(client: grestws.Client[ChatServer, ChatClient]) -> None:
    await client.outgoing.send_message("hello")  # E: arg-type reportArgumentType
    await client.outgoing.send_message(MarkAsReadRequest(message_id="1"))  # E: arg-type reportArgumentType
    await client.outgoing.mark_as_read(REQ)  # E: arg-type reportArgumentType
    await client.outgoing.send_message()  # E: call-arg reportCallIssue
    await client.outgoing.ping(REQ)  # E: call-arg reportCallIssue
    await client.outgoing.send_message(REQ, REQ)  # E: call-arg reportCallIssue
    await client.with_timeout(1.0).send_message(MSG)  # E: arg-type reportArgumentType


async def unknown_methods(client: grestws.Client[ChatServer, ChatClient]) -> None:
    await client.outgoing.remove_message(REQ)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
    await client.outgoing.new_message(MSG)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
    await client.outgoing.sendMessage(REQ)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
    await client.with_timeout(1.0).remove_message(REQ)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType


async def not_awaited(client: grestws.Client[ChatServer, ChatClient]) -> None:
    client.outgoing.send_message(REQ)  # E: unused-coroutine reportUnusedCoroutine
    client.outgoing.ping()  # E: unused-coroutine reportUnusedCoroutine
    client.with_timeout(None).send_message(REQ)  # E: unused-coroutine reportUnusedCoroutine
    grestws.as_result(client.outgoing.send_message(REQ))  # E: unused-coroutine reportUnusedCoroutine


async def wrong_use_of_results(client: grestws.Client[ChatServer, ChatClient]) -> None:
    flag: bool = await client.outgoing.send_message(REQ)  # E: assignment reportAssignmentType
    reply = await client.outgoing.send_message(REQ)
    count: int = reply.message_id  # E: assignment reportAssignmentType
    print(reply.messageId)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType reportUnknownArgumentType
    result = await grestws.as_result(client.outgoing.send_message(REQ))
    print(result.value)  # E: union-attr reportAttributeAccessIssue reportUnknownMemberType reportUnknownArgumentType
    if isinstance(result, grestws.Ok):
        text: str = result.value  # E: assignment reportAssignmentType
        print(text)
    print(flag, count)


class Partial:
    """Serves only one of ChatClient's three methods."""

    async def new_message(self, msg: Message) -> None:
        pass


class WrongTyping:
    """Serves all of ChatClient's methods, one with the wrong argument type."""

    async def new_message(self, msg: Message) -> None:
        pass

    async def typing(self, event: Message) -> None:
        pass

    async def are_you_there(self) -> bool:
        return True


class SubclassWrongAnswer(ChatClient):
    async def new_message(self, msg: Message) -> None:
        pass

    async def typing(self, event: TypingEvent) -> None:
        pass

    async def are_you_there(self) -> str:  # E: override reportIncompatibleMethodOverride
        return "yes"


async def connecting() -> None:
    await grestws.connect("ws://127.0.0.1:8765", ChatContract)  # E: arg-type reportArgumentType
    await grestws.connect("ws://127.0.0.1:8765", ChatApi, handlers=Partial())  # E: misc reportArgumentType
    await grestws.connect("ws://127.0.0.1:8765", ChatApi, handlers=WrongTyping())  # E: misc reportArgumentType
    await grestws.connect("ws://127.0.0.1:8765", ChatApi, timeout="soon")  # E: arg-type reportArgumentType
    opening = grestws.connect("ws://127.0.0.1:8765", ChatApi)
    await opening.outgoing.ping()  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
    client = await opening
    client.with_timeout("soon")  # E: arg-type reportArgumentType
