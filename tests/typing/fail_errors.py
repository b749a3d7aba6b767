"""Mistakes with errors and contract declarations that the checkers must reject.

A line ending in ``# E: <codes>`` must get exactly those error codes (mypy's codes and
pyright's ``report*`` rules); every other line must get none. ``# hole[...]`` marks a
line whose expectation a checker does not meet yet. See ``test_typing.py``.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

import grestws
from examples.chat.contract import ChatClient, ChatContract, ChatServer, SendMessageRequest


class RoomInfo(msgspec.Struct):
    room_id: str
    seats: int


class RoomFull(grestws.ApiError[RoomInfo], type="ROOM_FULL", status_code=400):
    pass


class Gone(grestws.ApiError, type="GONE", status_code=410):
    pass


INFO = RoomInfo(room_id="lobby", seats=8)


def raising() -> None:
    raise RoomFull("full", data=INFO)


def wrong_data() -> None:
    RoomFull("full", data="eight seats")  # E: call-overload reportArgumentType
    RoomFull("full", data={"room_id": "lobby", "seats": 8})  # E: call-overload reportArgumentType
    Gone("gone", data=INFO)  # E: call-overload reportCallIssue reportArgumentType
    grestws.NotFoundError("missing", data=3)  # E: call-overload reportCallIssue reportArgumentType
    grestws.ValidationError("bad", data=["text is empty"])  # E: list-item reportArgumentType
    RoomFull("full", info=INFO)  # E: call-overload reportCallIssue


def missing_data() -> None:
    RoomFull("full")  # E: call-overload reportCallIssue  # hole[mypy]: mypy ignores the self type of the first __init__ overload
    RoomFull("full", data=None)  # E: call-overload reportArgumentType  # hole[mypy]: mypy ignores the self type of the first __init__ overload


def wrong_use_of_data() -> None:
    try:
        raising()
    except RoomFull as exc:
        seats: str = exc.data.seats  # E: assignment reportAssignmentType
        print(exc.data.capacity)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType reportUnknownArgumentType
        print(seats)
    except Gone as exc:
        print(exc.data.seats)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType reportUnknownArgumentType


class Declarations(Protocol):
    @grestws.request  # E: type-var reportArgumentType reportUntypedFunctionDecorator
    def not_async(self) -> int: ...

    @grestws.notify(name="later")  # E: type-var reportArgumentType reportUntypedFunctionDecorator
    def not_async_either(self) -> None: ...

    @grestws.request(errors=[ValueError])  # E: list-item reportArgumentType
    async def undeclarable(self) -> int: ...

    @grestws.request(errors=[RoomInfo])  # E: list-item reportArgumentType
    async def not_an_error(self) -> int: ...

    @grestws.notify  # E: type-var reportArgumentType reportUntypedFunctionDecorator
    async def answers(self) -> int: ...


def contracts() -> None:
    grestws.SocketContract("Half", client_to_server=ChatServer)  # E: call-arg reportCallIssue
    grestws.SocketContract(client_to_server=ChatServer, server_to_client=ChatClient)  # E: call-arg reportCallIssue
    grestws.SocketContract("Chat", ChatServer, ChatClient)  # E: call-arg reportCallIssue
    ChatContract.at(3)  # E: call-overload reportArgumentType
    grestws.connect("ws://127.0.0.1:8765", ChatContract.at("/ws/chat"), handlers=SendMessageRequest(text="", channel_id=""))  # E: misc reportArgumentType


def queries() -> None:
    by_room = ChatContract.at("/ws/rooms", query=RoomInfo)
    grestws.connect("ws://127.0.0.1:8765", by_room, query=SendMessageRequest(text="", channel_id=""))  # E: misc reportArgumentType
    grestws.connect("ws://127.0.0.1:8765", ChatContract.at("/ws/chat"), query=RoomInfo(room_id="r", seats=1))  # E: misc reportArgumentType
