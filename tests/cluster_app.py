"""The App that tests/test_cluster.py runs in several ``grestws serve`` processes at once.

Clients authenticate with a bearer token: ``secret-<name>`` is user ``<name>``. Every
connection but those of the user ``probe`` joins the room ``lobby`` when it is accepted
(an ``on_connect`` hook); the
contract's methods join and leave rooms, push to a room (optionally not to the sender), to
a user's every device and to one connection, and report presence and which process serves
the caller, so that a test can see each push cross the processes through the broker.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Protocol

import msgspec

import grestws
from grestws.broker import LocalBroker

LOBBY = "lobby"
"""The room every connection joins when it is accepted (but those of :data:`PROBE`)."""
PROBE = "probe"
"""The user whose connections join no room, so that a test can call a process without
changing its presence."""


class Say(msgspec.Struct):
    room: str
    text: str
    exclude_me: bool = False


class Tell(msgspec.Struct):
    user: str
    text: str


class Whisper(msgspec.Struct):
    connection: str
    text: str


class Chat(msgspec.Struct):
    """A push: ``kind`` is ``room`` (with the room), ``user`` or ``connection``."""

    kind: str
    text: str
    sender: str
    room: str = ""


class Me(msgspec.Struct):
    """Who the caller is, which process serves it, and whether that process's broker is
    linked to the others."""

    user: str
    connection: str
    node: str
    pid: int
    linked: bool


class Present(msgspec.Struct):
    """``app.rooms.presence(room)`` as seen by one process."""

    users: list[str]
    connections: list[str]


class ClusterServer(Protocol):
    @grestws.request
    async def whoami(self) -> Me: ...

    @grestws.request
    async def join(self, room: str) -> None: ...

    @grestws.request
    async def leave(self, room: str) -> None: ...

    @grestws.request
    async def say(self, say: Say) -> int:
        """Push to ``say.room`` on every process; how many of this process got it."""
        ...

    @grestws.request
    async def tell(self, tell: Tell) -> int:
        """Push to every connection of ``tell.user`` on every process."""
        ...

    @grestws.request
    async def whisper(self, whisper: Whisper) -> int:
        """Push to the connection with id ``whisper.connection``, wherever it is."""
        ...

    @grestws.request
    async def presence(self, room: str) -> Present: ...

    @grestws.request
    async def kick(self, user: str) -> int:
        """Close every connection of ``user`` on every process."""
        ...


class ClusterClient(Protocol):
    @grestws.notify
    async def chat(self, chat: Chat) -> None: ...


async def verify(token: str) -> grestws.Identity | None:
    name = token.removeprefix("secret-")
    return grestws.Identity(name) if token.startswith("secret-") and name else None


ClusterApi = grestws.SocketContract(
    "ClusterApi", client_to_server=ClusterServer, server_to_client=ClusterClient
).at("/ws/cluster")

app = grestws.App(shutdown_timeout=2.0)


class ClusterHandler(ClusterServer):
    def __init__(self, conn: grestws.ServerConnection[ClusterClient]) -> None:
        self.conn = conn
        assert conn.identity is not None  # BearerAuth refuses a connection without one
        self.user = conn.identity.id

    async def whoami(self) -> Me:
        broker = app.rooms.broker
        return Me(self.user, self.conn.id, broker.node, os.getpid(), broker.stats.connected)

    async def join(self, room: str) -> None:
        app.rooms.join(self.conn, room)

    async def leave(self, room: str) -> None:
        app.rooms.leave(self.conn, room)

    async def say(self, say: Say) -> int:
        chat = Chat("room", say.text, self.user, say.room)
        exclude: Any = self.conn if say.exclude_me else None
        return await app.rooms.send(say.room, ClusterClient.chat, chat, exclude=exclude)

    async def tell(self, tell: Tell) -> int:
        return await app.rooms.send_to_user(tell.user, ClusterClient.chat, Chat("user", tell.text, self.user))

    async def whisper(self, whisper: Whisper) -> int:
        chat = Chat("connection", whisper.text, self.user)
        return await app.rooms.send_to_connection(whisper.connection, ClusterClient.chat, chat)

    async def presence(self, room: str) -> Present:
        members = await app.rooms.presence(room)
        return Present(await app.rooms.users(room), sorted(member.connection for member in members))

    async def kick(self, user: str) -> int:
        return await app.rooms.disconnect_user(user, reason="Kicked")


app.add(ClusterApi.use(grestws.BearerAuth(verify=verify)), ClusterHandler)


@app.on_connect
def join_lobby(conn: grestws.ServerConnection[Any]) -> None:
    if conn.identity is None or conn.identity.id != PROBE:
        app.rooms.join(conn, LOBBY)


class StuckBroker(LocalBroker):
    """A broker whose ``stop()`` never returns, so the shutdown of its App never ends."""

    async def stop(self) -> None:
        await asyncio.get_running_loop().create_future()


stuck_app = grestws.App(broker=StuckBroker())
"""An App whose shutdown hangs: only a forced one ends ``grestws serve``."""
stuck_app.add(ClusterApi.use(grestws.BearerAuth(verify=verify)), ClusterHandler)
