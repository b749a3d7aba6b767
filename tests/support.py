"""A test contract, its handlers and small helpers for the integration tests.

``RoomApi`` covers every call kind in both directions (with and without an argument,
with and without a result), an application error with typed data, and handlers that tell
the test what they saw. ``Skew`` is one contract seen two ways: the server serves
``SkewServerSide`` and the client connects with ``SkewClientSide``, whose halves differ, so
a test can make a peer send what the other side does not accept.

Contract classes and Structs are module level: their annotations are resolved with
``typing.get_type_hints``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, Protocol

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

import grestws
from examples.chat.contract import ChatClient, Message, TypingEvent

WAIT = 5.0
"""Seconds any single wait in a test may take before it counts as a failure."""


# -- RoomApi ------------------------------------------------------------------------------


class RoomInfo(msgspec.Struct, rename="camel"):
    room_id: str
    seats: int


class RoomFull(grestws.ApiError[RoomInfo], type="ROOM_FULL", status_code=400):
    """The room has no free seat."""


class Note(msgspec.Struct, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    room_id: str = "lobby"


class Posted(msgspec.Struct, rename="camel"):
    note_id: int
    text: str


class Question(msgspec.Struct):
    text: str


class Kick(msgspec.Struct):
    code: int
    reason: str


class CallInfo(msgspec.Struct, rename="camel"):
    """What a handler saw through ``current_connection()`` and ``current_message()``."""

    connection_id: str
    path: str
    remote_host: str
    remote_port: int
    side: str
    message_path: str
    message_id: int | None


class RoomServer(Protocol):
    """What a client may call on the server."""

    @grestws.request(errors=[RoomFull])
    async def post(self, note: Note) -> Posted:
        """Post ``note``. Room ``full`` raises RoomFull, ``undeclared`` an undeclared
        ApiError, ``crash`` a plain exception."""
        ...

    @grestws.request
    async def count(self) -> int:
        """How many notes were posted and recorded on this connection."""
        ...

    @grestws.request
    async def rename(self, question: Question) -> None:
        """Request with an argument and no result."""
        ...

    @grestws.request
    async def clear(self) -> None:
        """Request with neither argument nor result."""
        ...

    @grestws.request
    async def double(self, n: int) -> int:
        """``2 * n``; first waits at ``Hub.barrier`` when there is one."""
        ...

    @grestws.request
    async def block(self) -> None:
        """Wait until the test releases the handler (``Hub.release``)."""
        ...

    @grestws.request
    async def whoami(self) -> CallInfo:
        """The handler's view of its connection and message."""
        ...

    @grestws.request
    async def ask_client(self, question: Question) -> str:
        """Ask the client ``answer(question)`` and return its answer."""
        ...

    @grestws.notify
    async def record(self, note: Note) -> None:
        """Fire-and-forget with an argument."""
        ...

    @grestws.notify
    async def poke(self) -> None:
        """Fire-and-forget without an argument."""
        ...

    @grestws.notify
    async def kick(self, kick: Kick) -> None:
        """Make the server close this connection with ``kick.code`` and ``kick.reason``."""
        ...


class RoomClient(Protocol):
    """What the server may call on a client."""

    @grestws.notify
    async def notice(self, note: Note) -> None:
        """Fire-and-forget with an argument."""
        ...

    @grestws.notify
    async def tick(self) -> None:
        """Fire-and-forget without an argument."""
        ...

    @grestws.request
    async def answer(self, question: Question) -> str:
        """Request with an argument and a result."""
        ...

    @grestws.request
    async def confirm(self) -> bool:
        """Request without an argument, with a result."""
        ...

    @grestws.request
    async def forget(self, question: Question) -> None:
        """Request with an argument, without a result."""
        ...

    @grestws.request
    async def whoami(self) -> CallInfo:
        """The client handler's view of its connection and message."""
        ...


RoomContract = grestws.SocketContract(
    "RoomApi", client_to_server=RoomServer, server_to_client=RoomClient, rename="camel"
)
RoomApi = RoomContract.at("/ws/room")


class Hub:
    """What the server-side handlers of one test share with the test.

    Attributes:
        connections: Every connection a handler was made for, in order.
        notes: Notes received by ``record`` (fire-and-forget), in order of arrival.
        pokes: One ``None`` per ``poke`` received.
        started: Set once a ``block`` handler runs.
        release: ``block`` handlers return once this is set.
        finished: One entry per ``block`` handler: "done" or "cancelled".
        refuse: When set, the handler factory raises it and the handshake is refused.
        barrier: When set, every ``double`` handler waits at it before answering.
    """

    def __init__(self) -> None:
        self.connections: list[grestws.ServerConnection[RoomClient]] = []
        self.notes: asyncio.Queue[Note] = asyncio.Queue()
        self.pokes: asyncio.Queue[None] = asyncio.Queue()
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished: asyncio.Queue[str] = asyncio.Queue()
        self.refuse: grestws.ApiError[Any] | None = None
        self.barrier: asyncio.Barrier | None = None


def call_info(side: str) -> CallInfo:
    conn = grestws.current_connection()
    message = grestws.current_message()
    host, port = conn.remote_address[:2]
    return CallInfo(
        connection_id=conn.id,
        path=conn.path,
        remote_host=host,
        remote_port=port,
        side=side,
        message_path=message.path,
        message_id=message.id,
    )


class RoomHandler(RoomServer):
    """One connection's handler on the server."""

    def __init__(self, conn: grestws.ServerConnection[RoomClient], hub: Hub) -> None:
        if hub.refuse is not None:
            raise hub.refuse
        self.conn = conn
        self.hub = hub
        self.posted = 0
        hub.connections.append(conn)

    async def post(self, note: Note) -> Posted:
        if note.room_id == "full":
            raise RoomFull("Room is full", data=RoomInfo(room_id=note.room_id, seats=8))
        if note.room_id == "undeclared":
            raise grestws.NotFoundError("secret: room table row 42 is missing")
        if note.room_id == "crash":
            raise RuntimeError("secret: database password is hunter2")
        self.posted += 1
        return Posted(note_id=self.posted, text=note.text)

    async def count(self) -> int:
        return self.posted

    async def rename(self, question: Question) -> None:
        self.hub.notes.put_nowait(Note(text=question.text, room_id="renamed"))

    async def clear(self) -> None:
        self.posted = 0

    async def double(self, n: int) -> int:
        if self.hub.barrier is not None:
            await asyncio.wait_for(self.hub.barrier.wait(), WAIT)
        return 2 * n

    async def block(self) -> None:
        self.hub.started.set()
        try:
            await self.hub.release.wait()
        except asyncio.CancelledError:
            self.hub.finished.put_nowait("cancelled")
            raise
        self.hub.finished.put_nowait("done")

    async def whoami(self) -> CallInfo:
        return call_info("server")

    async def ask_client(self, question: Question) -> str:
        return await self.conn.outgoing.answer(question)

    async def record(self, note: Note) -> None:
        self.posted += 1
        self.hub.notes.put_nowait(note)

    async def poke(self) -> None:
        self.hub.pokes.put_nowait(None)

    async def kick(self, kick: Kick) -> None:
        await self.conn.close(kick.code, kick.reason)


def room_app(hub: Hub, **settings: Any) -> grestws.App:
    """An App serving RoomApi with handlers that report to ``hub``."""
    app = grestws.App(**settings)
    app.add(RoomApi, lambda conn: RoomHandler(conn, hub))
    return app


class RoomClientHandler(RoomClient):
    """The client side's handler: queues what the server sent.

    Args:
        gate: When given, ``answer`` and ``confirm`` set :attr:`entered` and then wait
            until ``gate`` is set before answering.
    """

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.notices: asyncio.Queue[Note] = asyncio.Queue()
        self.ticks: asyncio.Queue[None] = asyncio.Queue()
        self.forgotten: asyncio.Queue[Question] = asyncio.Queue()
        self.gate = gate
        self.entered = asyncio.Event()

    async def _pass_gate(self) -> None:
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()

    async def notice(self, note: Note) -> None:
        self.notices.put_nowait(note)

    async def tick(self) -> None:
        self.ticks.put_nowait(None)

    async def answer(self, question: Question) -> str:
        await self._pass_gate()
        if question.text == "crash":
            raise RuntimeError("secret: client internals")
        return question.text.upper()

    async def confirm(self) -> bool:
        await self._pass_gate()
        return True

    async def forget(self, question: Question) -> None:
        self.forgotten.put_nowait(question)

    async def whoami(self) -> CallInfo:
        return call_info("client")


class ChatInbox(ChatClient):
    """A chat client's handler that queues the messages pushed to it."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()

    async def new_message(self, msg: Message) -> None:
        self.messages.put_nowait(msg)

    async def typing(self, event: TypingEvent) -> None:
        pass

    async def are_you_there(self) -> bool:
        return True


# -- Skew: one contract, two views ------------------------------------------------------------


class LooseShout(msgspec.Struct):
    text: str


class Shout(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1)]


class SkewServer(Protocol):
    """The server's view of what clients call."""

    @grestws.request
    async def label(self) -> str: ...

    @grestws.request
    async def shout_back(self, shout: LooseShout) -> None:
        """Send ``shout`` to the caller as a ``shout`` message, as it is."""
        ...

    @grestws.request
    async def unheard_back(self) -> None:
        """Send the caller an ``unheard`` message, which its view does not have."""
        ...


class SkewServerWide(Protocol):
    """The client's view of the server: ``label`` answers an int, and ``missing`` exists."""

    @grestws.request
    async def label(self) -> int: ...

    @grestws.request
    async def shout_back(self, shout: LooseShout) -> None: ...

    @grestws.request
    async def unheard_back(self) -> None: ...

    @grestws.request
    async def missing(self) -> None: ...

    @grestws.notify
    async def vanish(self) -> None: ...


class SkewClientLoose(Protocol):
    """The server's view of the client: any text goes, and ``unheard`` exists."""

    @grestws.notify
    async def shout(self, shout: LooseShout) -> None: ...

    @grestws.notify
    async def unheard(self) -> None: ...


class SkewClientStrict(Protocol):
    """The client's view of itself: a shout needs text."""

    @grestws.notify
    async def shout(self, shout: Shout) -> None: ...


SkewServerSide = grestws.SocketContract(
    "Skew", client_to_server=SkewServer, server_to_client=SkewClientLoose
).at("/ws/skew")
SkewClientSide = grestws.SocketContract(
    "Skew", client_to_server=SkewServerWide, server_to_client=SkewClientStrict
).at("/ws/skew")


class SkewHandler(SkewServer):
    def __init__(self, conn: grestws.ServerConnection[SkewClientLoose]) -> None:
        self.conn = conn

    async def label(self) -> str:
        return "not a number"

    async def shout_back(self, shout: LooseShout) -> None:
        await self.conn.outgoing.shout(shout)

    async def unheard_back(self) -> None:
        await self.conn.outgoing.unheard()


class ShoutCatcher(SkewClientStrict):
    def __init__(self) -> None:
        self.shouts: asyncio.Queue[Shout] = asyncio.Queue()

    async def shout(self, shout: Shout) -> None:
        self.shouts.put_nowait(shout)


def skew_app() -> grestws.App:
    app = grestws.App()
    app.add(SkewServerSide, SkewHandler)
    return app


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    """The next item of ``queue``, waiting at most :data:`WAIT` seconds."""
    return await asyncio.wait_for(queue.get(), WAIT)


# -- speaking frames by hand -----------------------------------------------------------------


class RawFrame(msgspec.Struct, frozen=True):
    """One received frame, split as PROTOCOL.md says; ``data`` is the decoded JSON (or None)."""

    type: str
    path: str
    id: str
    data: Any


def split_frame(text: str | bytes) -> RawFrame:
    if isinstance(text, bytes):
        text = text.decode()
    kind, path, id, data = text.split(":", 3)
    return RawFrame(kind, path, id, msgspec.json.decode(data) if data else None)


@contextlib.asynccontextmanager
async def raw_socket(
    url: str, *, handshake: bool = True, compression: Literal["deflate"] | None = "deflate"
) -> AsyncIterator[ClientConnection]:
    """A plain websockets connection to ``url``; with ``handshake``, ``h`` was sent and ``k``
    seen. It offers permessage-deflate unless ``compression`` is None."""
    async with ws_connect(url, open_timeout=WAIT, compression=compression) as ws:
        if handshake:
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
        yield ws


async def recv_frame(ws: ClientConnection) -> RawFrame:
    """The next frame on ``ws``, waiting at most :data:`WAIT` seconds."""
    return split_frame(await asyncio.wait_for(ws.recv(), WAIT))
