"""A server with two contracts, per-connection handlers and calls to the client.

Run from the repository root: ``python docs/examples/server.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from typing import Protocol

import msgspec

import grestws

# -- Two contracts -----------------------------------------------------------------------


class Message(msgspec.Struct, rename="camel"):
    room: str
    text: str


class ChatServer(Protocol):
    @grestws.request
    async def send_message(self, text: str) -> int: ...

    @grestws.request
    async def count_alive(self) -> int: ...

    @grestws.notify
    async def leave(self) -> None: ...


class ChatClient(Protocol):
    @grestws.notify
    async def new_message(self, msg: Message) -> None: ...

    @grestws.request
    async def are_you_there(self) -> bool: ...


ChatApi = grestws.SocketContract(
    "ChatApi", client_to_server=ChatServer, server_to_client=ChatClient, rename="camel"
).at("/ws/chat")


class StatusServer(Protocol):
    @grestws.request
    async def rooms(self) -> dict[str, int]: ...

    @grestws.request
    async def wait(self, seconds: float) -> float: ...


class NoCalls(Protocol):
    pass


StatusApi = grestws.SocketContract("StatusApi", client_to_server=StatusServer, server_to_client=NoCalls).at(
    "/ws/status"
)

# -- Handlers ----------------------------------------------------------------------------

rooms: defaultdict[str, set[grestws.ServerConnection[ChatClient]]] = defaultdict(set)


class ChatHandler(ChatServer):
    """Made once per connection, after the handshake, before the client is accepted."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        if conn.handshake_headers.get("authorization") != "Bearer let-me-in":
            raise grestws.NotAuthorizedError("Missing or wrong token")
        self.conn = conn
        self.room = conn.query.get("room", "general")
        rooms[self.room].add(conn)
        conn.on_close(self.closed)
        print(f"joined {self.room}: {conn.id[:8]} from {conn.remote_address[0]}")

    def closed(self, code: int | None, reason: str) -> None:
        rooms[self.room].discard(self.conn)
        print(f"left {self.room}: {self.conn.id[:8]} ({code} {reason!r})")

    async def send_message(self, text: str) -> int:
        message = Message(room=self.room, text=text)
        return grestws.broadcast(rooms[self.room], ChatClient.new_message, message)

    async def count_alive(self) -> int:
        async def alive(member: grestws.ServerConnection[ChatClient]) -> bool:
            with contextlib.suppress(grestws.GrestwsError):
                return await member.with_timeout(1.0).are_you_there()
            return False

        answers = await asyncio.gather(*(alive(member) for member in list(rooms[self.room])))
        return sum(answers)

    async def leave(self) -> None:
        await self.conn.close(1000, "left the room")


class StatusHandler(StatusServer):
    def __init__(self, conn: grestws.ServerConnection[NoCalls]) -> None:
        pass

    async def rooms(self) -> dict[str, int]:
        return {name: len(members) for name, members in rooms.items() if members}

    async def wait(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


app = grestws.App(request_timeout=10.0, shutdown_timeout=5.0)
app.add(ChatApi, ChatHandler)
app.add(StatusApi, StatusHandler)

# -- Clients to try it -------------------------------------------------------------------


class Member(ChatClient):
    def __init__(self) -> None:
        self.inbox: list[str] = []

    async def new_message(self, msg: Message) -> None:
        self.inbox.append(msg.text)

    async def are_you_there(self) -> bool:
        return True


async def main() -> None:
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        print("serving", server.urls())
        token = {"authorization": "Bearer let-me-in"}

        try:
            await grestws.connect(server.url, ChatApi)
        except grestws.NotAuthorizedError as exc:
            print("refused:", exc)

        alice, bob = Member(), Member()
        async with (
            grestws.connect(server.url + "?room=lobby", ChatApi, headers=token, handlers=alice) as a,
            grestws.connect(server.url + "?room=lobby", ChatApi, headers=token, handlers=bob) as b,
            grestws.connect(server.url, StatusApi) as status,
        ):
            assert await a.outgoing.send_message("hi") == 2
            assert await b.outgoing.count_alive() == 2
            assert await status.outgoing.rooms() == {"lobby": 2}

            # Each incoming call runs in its own task: these two overlap.
            started = time.monotonic()
            await asyncio.gather(status.outgoing.wait(0.5), status.outgoing.wait(0.5))
            assert time.monotonic() - started < 0.95

            closed = asyncio.Event()
            b.on_close(lambda code, reason: closed.set())
            await b.outgoing.leave()
            await closed.wait()
            print("bob's client closed with", b.close_code)
            assert b.close_code == 1000
        assert alice.inbox == bob.inbox == ["hi"]


if __name__ == "__main__":
    asyncio.run(main())
