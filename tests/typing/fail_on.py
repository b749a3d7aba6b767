"""Handlers given to ``Client.on`` that do not fit the stub they serve.

A line ending in ``# E: <codes>`` must get exactly those error codes (mypy's codes and
pyright's ``report*`` rules); every other line must get none. ``# hole[...]`` marks a
line whose expectation a checker does not meet yet. See ``test_typing.py``.
"""

from __future__ import annotations

import grestws
from examples.chat.contract import ChatClient, ChatServer, Message, TypingEvent


async def show(msg: Message) -> None:
    pass


async def show_renamed(message: Message) -> None:
    pass


async def show_text(msg: str) -> None:
    pass


async def show_typing(event: TypingEvent) -> None:
    pass


async def there() -> bool:
    return True


async def there_text() -> str:
    return "yes"


def there_sync() -> bool:
    return True


async def nothing() -> None:
    pass


def handlers(client: grestws.Client[ChatServer, ChatClient]) -> None:
    client.on(ChatClient.new_message)(show)
    client.on(ChatClient.typing)(show_typing)
    client.on(ChatClient.are_you_there)(there)
    client.on(ChatClient.new_message)(show_renamed)
    client.on(ChatClient.new_message)(show_text)  # E: arg-type reportArgumentType
    client.on(ChatClient.typing)(show)  # E: arg-type reportArgumentType
    client.on(ChatClient.are_you_there)(there_text)  # E: arg-type reportArgumentType
    client.on(ChatClient.are_you_there)(show)  # E: arg-type reportArgumentType
    client.on(ChatClient.new_message)(there)  # E: arg-type reportArgumentType
    client.on(ChatClient.new_message)(nothing)  # E: arg-type reportArgumentType
    client.on(ChatClient.are_you_there)(there_sync)  # E: arg-type reportArgumentType
    client.on(ChatServer.ping)(nothing)  # E: arg-type reportCallIssue reportArgumentType
