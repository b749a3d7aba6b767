"""What the checkers infer for tests written with :mod:`grestws.testkit` against the chat
example's contract. See ``test_typing.py``; the functions are never called.
"""

from __future__ import annotations

from typing import reveal_type

import grestws
from examples.chat.contract import ChatApi, ChatClient, ChatServer, SendMessageRequest
from examples.chat.server import app
from grestws.testkit import ClientFactory, call_on, expect, when

REQ = SendMessageRequest(text="hi", channel_id="general")


async def calls() -> None:
    ann = call_on(ChatApi, app, token="secret-ann")
    reveal_type(ann)  # R: TestClient[ChatServer, ChatClient]
    async with ann as entered:
        reveal_type(entered)  # R: TestClient[ChatServer, ChatClient]
    reveal_type(await ann.connect(token="secret-bob"))  # R: TestClient[ChatServer, ChatClient]
    reveal_type(ann.call)  # R: ChatServer
    reveal_type(await ann.call.send_message(REQ))  # R: SendMessageResponse
    reveal_type(expect(ann.call.send_message(REQ)))  # R: CallExpectation[SendMessageResponse]
    matched = await expect(ann.call.send_message(REQ)).to_match({"success": True})
    reveal_type(matched)  # R: SendMessageResponse
    error = await expect(ann.call.send_message(REQ)).to_be_error(grestws.ForbiddenError)
    reveal_type(error)  # R: ForbiddenError
    invalid = await expect(ann.call.send_message(REQ)).to_fail_validation("text")
    reveal_type(invalid)  # R: ValidationError
    reveal_type(await expect(ann.call.ping()).to_match(None))  # R: None
    await ann.disconnect()


async def pushes() -> None:
    bob = call_on(ChatApi, "ws://127.0.0.1:8765")
    reveal_type(bob.mock)  # R: ChatClient
    reveal_type(expect(bob.mock.new_message))  # R: PushExpectation[Message, None]
    reveal_type(await expect(bob.mock.new_message).to_match({"text": "hi"}))  # R: Message
    reveal_type(await expect(bob.mock.typing).to_be_called())  # R: TypingEvent
    reveal_type(await expect(bob.mock.are_you_there).to_be_called())  # R: None
    reveal_type(when(bob.mock.are_you_there))  # R: Answer[None, bool]
    when(bob.mock.are_you_there).reply(True)


async def fixture(grestws_client: ClientFactory) -> None:
    reveal_type(grestws_client(ChatApi))  # R: TestClient[ChatServer, ChatClient]


def halves(server: ChatServer, client: ChatClient) -> None:
    del server, client
