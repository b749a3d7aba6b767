"""Recovery: a client that comes back within the window gets every push it missed while
away, in order, once, and is told when that was not possible (docs/reconnect.md and
docs/protocol.md, "Recovery").

Servers run on 127.0.0.1 at free ports: ``start_server`` (grestws.serve and uvicorn) for
one process, and two Apps with a RedisBroker each against a real redis-server for a
cluster. Clients dial through a :class:`GatedDialer`: once a test has closed its gate, a
client that dropped stays away (its reconnect waits at the gate) until the test opens it
again, so "pushed while the client was away" is a fact, not a race. Reconnect pauses are
0 s, and every wait is bounded by :data:`WAIT`.

Whether a client got EXACTLY what it missed is checked with a marker (:func:`got_until_marker`):
once it is back, the test pushes a marker to its connection and takes what arrived up to
it. The server writes what a client missed right after ``k``, before anything newer, so
anything the replay carried (a duplicate too) arrives before the marker.

The only waits on the wall clock let a recovery window pass (``MemoryHistory`` takes no
clock), and are marked where they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

import grestws
from grestws.broker import Broker, Envelope, LocalBroker, Target
from grestws.broker.redis import RedisBroker
from grestws.context import Connection
from grestws.incidents import Incident, Incidents
from grestws.protocol.positions import MAX_NODES, RECOVERY_HEADER, Positions, parse_position
from grestws.reconnect import Drop, LinkInfo, Reconnect
from grestws.recovery import History, Recovery, SessionRecord, read_after
from grestws.recovery.memory import MemoryHistory
from grestws.session import Session
from grestws.testkit import memory_pair
from grestws.transports import Dialed
from grestws.transports.websockets import WebsocketsDialer
from tests.conftest import StartServer
from tests.proxy import TcpProxy
from tests.redis_server import RedisServer
from tests.support import WAIT, RawFrame, recv_frame

T = TypeVar("T")

WINDOW = 60.0
"""The recovery window of the tests that do not let it pass."""
RECOVERY = Recovery(window=WINDOW)
LIMITS = grestws.Limits(close_timeout=0.25)
"""The defaults, but a dropped connection is gone 0.25 s after its close frame (2 s by
default), which is all a test waits for."""

# -- the contract ------------------------------------------------------------------------


class FeedServer(Protocol):
    @grestws.request
    async def join(self, room: str) -> str:
        """Join ``room``; this connection's id."""
        ...

    @grestws.request
    async def leave(self, room: str) -> None:
        """Leave ``room``."""
        ...

    @grestws.request
    async def whoami(self) -> str:
        """This connection's id."""
        ...


class FeedClient(Protocol):
    @grestws.notify
    async def item(self, text: str) -> None: ...


Feed = grestws.SocketContract("RecoveryFeed", client_to_server=FeedServer, server_to_client=FeedClient)
FeedApi = Feed.at("/ws/feed")
ITEM = "RecoveryFeed.item"
"""The path of the push, as it travels."""

IDENTITIES = {
    "ann": grestws.Identity("ann", frozenset({"feed:vip"})),
    "bob": grestws.Identity("bob"),
}


async def verify(token: str) -> grestws.Identity | None:
    """The tokens ``ann`` (scope ``feed:vip``) and ``bob``; any other is refused."""
    return IDENTITIES.get(token)


ServerFeedApi = FeedApi.use(grestws.BearerAuth(verify=verify))


class FeedHandler(FeedServer):
    def __init__(self, conn: grestws.ServerConnection[FeedClient]) -> None:
        self.conn = conn
        self.rooms = grestws.Rooms.of(conn)

    async def join(self, room: str) -> str:
        self.rooms.join(self.conn, room)
        return self.conn.id

    async def leave(self, room: str) -> None:
        self.rooms.leave(self.conn, room)

    async def whoami(self) -> str:
        return self.conn.id


class Backend:
    """An App serving the feed with recovery (by default), and the connections it saw
    close."""

    def __init__(
        self,
        recovery: Recovery | None = RECOVERY,
        *,
        broker: Broker | None = None,
        limits: grestws.Limits = LIMITS,
    ) -> None:
        self.app = grestws.App(recovery=recovery, broker=broker, limits=limits)
        self.app.add(ServerFeedApi, FeedHandler)
        self.closed: asyncio.Queue[str] = asyncio.Queue()
        """The id of each accepted connection once the App let go of it (it left its rooms,
        and its session's window runs)."""
        self.app.on_disconnect(lambda conn, code, reason: self.closed.put_nowait(conn.id))

    def connection(self, conn_id: str) -> grestws.ServerConnection[Any]:
        """The open connection with id ``conn_id``."""
        found = [conn for conn in self.app.connections if conn.id == conn_id and conn.is_open]
        assert len(found) == 1, f"{len(found)} open connections with id {conn_id}"
        return found[0]

    def drop(self, conn_id: str) -> None:
        """Drop the connection ``conn_id`` as a network failure would look to its client."""
        self.connection(conn_id).drop(1011, "the network went away")

    async def push(self, room: str, *texts: str) -> None:
        for text in texts:
            await self.app.rooms.send(room, FeedClient.item, text)


# -- helpers -----------------------------------------------------------------------------


async def next_of(queue: asyncio.Queue[T]) -> T:
    """The next item of ``queue``, within :data:`WAIT` seconds."""
    async with asyncio.timeout(WAIT):
        return await queue.get()


class GatedDialer:
    """Dials with websockets, once its gate is open: :meth:`hold` keeps a client that
    dropped away until :meth:`release`.

    Attributes:
        urls: Every URL dialed, in order.
    """

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._dial = WebsocketsDialer()
        self.urls: list[str] = []

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        await self._open.wait()  # the client bounds a dial by its handshake timeout
        self.urls.append(url)
        return await self._dial(url, headers)


class Subscriber:
    """A :class:`grestws.Client` of the feed whose setup joins ``rooms`` unless its session
    was recovered; it queues what it is pushed, its links and its drops."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token: str = "ann",
        rooms: Sequence[str] = ("r",),
        recover: bool = True,
    ) -> None:
        self.token = token
        self.rooms = rooms
        self.dialer = GatedDialer()
        self.items: asyncio.Queue[str] = asyncio.Queue()
        self.links: asyncio.Queue[LinkInfo] = asyncio.Queue()
        self.drops: asyncio.Queue[Drop] = asyncio.Queue()
        self.client: grestws.Client[FeedServer, FeedClient] = grestws.Client(
            urls,
            FeedApi,
            headers=self._headers,
            setup=self._setup,
            reconnect=Reconnect(initial_delay=0.0, max_delay=0.0),
            dialer=self.dialer,
            timeout=WAIT,
            recover=recover,
        )
        self.client.on(FeedClient.item)(self._item)
        self.client.on_drop(self.drops.put_nowait)

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    async def _setup(self, link: LinkInfo) -> None:
        if link.recovered is not True:
            for room in self.rooms:
                await self.client.outgoing.join(room)
        self.links.put_nowait(link)

    async def _item(self, text: str) -> None:
        self.items.put_nowait(text)

    async def connect(self) -> tuple[str, LinkInfo]:
        """Connect; the server's id of the connection, and the first link."""
        await self.client.connect()
        link = await next_of(self.links)
        return await self.client.outgoing.whoami(), link

    async def away(self, cut: Callable[[], object]) -> Drop:
        """Close the gate, ``cut()`` the link, and wait until the client saw the drop."""
        self.dialer.hold()
        cut()
        drop = await next_of(self.drops)
        assert drop.reconnecting, drop
        return drop

    async def back(self) -> LinkInfo:
        """Open the gate; the link the client set up."""
        self.dialer.release()
        return await next_of(self.links)


_markers = itertools.count(1)


async def got_until_marker(sub: Subscriber, app: grestws.App, conn_id: str) -> list[str]:
    """Push a marker to the connection ``conn_id`` from ``app`` and return what ``sub`` got
    before it (since the previous call)."""
    marker = f"marker-{next(_markers)}"
    async with asyncio.timeout(WAIT):
        await app.rooms.send_to_connection(conn_id, FeedClient.item, marker)
        got: list[str] = []
        while (text := await sub.items.get()) != marker:
            got.append(text)
    return got


@pytest.fixture
async def stack() -> AsyncIterator[contextlib.AsyncExitStack]:
    """Closes what a test opened (its clients before the servers of ``start_server``)."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack


async def subscribe(
    stack: contextlib.AsyncExitStack, urls: str | Sequence[str], **options: Any
) -> Subscriber:
    sub = Subscriber(urls, **options)
    stack.push_async_callback(sub.client.disconnect)
    return sub


def feed_url(server_url: str) -> str:
    return server_url + FeedApi.path


async def handshake(ws: ClientConnection, headers: Mapping[str, str]) -> RawFrame:
    """Send ``h`` with ``headers``; the answer."""
    await ws.send("h:::" + json.dumps(dict(headers)))
    return await recv_frame(ws)


def offer(session: str | None = None, positions: Mapping[str, int] | None = None) -> str:
    """The value of the recovery header."""
    found: dict[str, Any] = (
        {} if session is None else {"session": session, "positions": dict(positions or {})}
    )
    return json.dumps(found)


POSITION = re.compile(r"^[0-9a-f]{16}\.[1-9][0-9]*$")


def position(frame: RawFrame) -> tuple[str, int]:
    """The position in an ``m`` frame's id field."""
    assert POSITION.match(frame.id), frame
    found = parse_position(frame.id.encode())
    assert found is not None
    return found


# -- one process -------------------------------------------------------------------------


class TestResume:
    """A client whose link drops while pushes go out gets them all, once, in order."""

    async def test_a_link_cut_by_the_network(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        proxy = await stack.enter_async_context(TcpProxy(server.port))
        sub = await subscribe(stack, f"ws://127.0.0.1:{proxy.port}")
        conn_id, first = await sub.connect()
        assert first.recovered is None  # a new session
        await backend.push("r", "before")
        assert await got_until_marker(sub, backend.app, conn_id) == ["before"]

        await sub.away(proxy.cut)
        await backend.push("r", "p1", "p2", "p3")
        proxy.heal()
        link = await sub.back()

        assert (link.reconnect, link.recovered) == (True, True)
        assert await got_until_marker(sub, backend.app, conn_id) == ["p1", "p2", "p3"]
        assert await sub.client.outgoing.whoami() == conn_id  # the same connection id
        await backend.push("r", "live")  # still in the room, without joining again
        assert await got_until_marker(sub, backend.app, conn_id) == ["live"]

    async def test_a_connection_the_server_dropped_twice(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()
        await backend.push("r", "before")
        assert await got_until_marker(sub, backend.app, conn_id) == ["before"]

        for round in range(2):
            await sub.away(lambda: backend.drop(conn_id))
            texts = [f"round{round}-{n}" for n in range(5)]
            await backend.push("r", *texts)
            link = await sub.back()
            assert link.recovered is True
            assert await got_until_marker(sub, backend.app, conn_id) == texts
            assert await sub.client.outgoing.whoami() == conn_id

    async def test_pushes_to_the_user_the_connection_and_everyone(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        rooms = backend.app.rooms
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()

        await sub.away(lambda: backend.drop(conn_id))
        await rooms.send_to_user("ann", FeedClient.item, "to ann")
        await rooms.send_to_user("bob", FeedClient.item, "to bob")
        await rooms.send_to_connection(conn_id, FeedClient.item, "to this connection")
        await rooms.send_to_connection("another", FeedClient.item, "to another connection")
        await rooms.send_to_everyone(FeedClient.item, "to everyone")
        await rooms.send("elsewhere", FeedClient.item, "to a room it never joined")
        await rooms.send("r", FeedClient.item, "to its room")
        assert (await sub.back()).recovered is True

        assert await got_until_marker(sub, backend.app, conn_id) == [
            "to ann",
            "to this connection",
            "to everyone",
            "to its room",
        ]

    async def test_exclude_and_only_hold_in_the_replay_as_they_do_live(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        rooms = backend.app.rooms
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)  # ann, with the scope feed:vip
        conn_id, _ = await sub.connect()

        async def send_all() -> None:
            await rooms.send("r", FeedClient.item, "to all")
            await rooms.send("r", FeedClient.item, "not to ann", exclude=conn_id)
            await rooms.send("r", FeedClient.item, "not to another", exclude=["another", "and another"])
            await rooms.send("r", FeedClient.item, "to vips", only=grestws.Scope("feed:vip"))
            await rooms.send("r", FeedClient.item, "to admins", only=grestws.Scope("feed:admin"))
            await rooms.send_to_user("ann", FeedClient.item, "to ann elsewhere", exclude=conn_id)
            await rooms.send_to_everyone(FeedClient.item, "to everyone else", exclude=conn_id)
            await rooms.send_to_everyone(FeedClient.item, "to every vip", only=grestws.Scope("feed:vip"))
            await rooms.send_to_everyone(FeedClient.item, "to every admin", only=grestws.Scope("feed:admin"))

        expected = ["to all", "not to another", "to vips", "to every vip"]
        await send_all()
        assert await got_until_marker(sub, backend.app, conn_id) == expected  # live

        await sub.away(lambda: backend.drop(conn_id))
        await send_all()
        assert (await sub.back()).recovered is True
        assert await got_until_marker(sub, backend.app, conn_id) == expected  # replayed

    async def test_a_room_left_before_the_drop_is_not_replayed(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url, rooms=("r", "old"))
        conn_id, _ = await sub.connect()
        await backend.push("old", "while in old")
        assert await got_until_marker(sub, backend.app, conn_id) == ["while in old"]
        await sub.client.outgoing.leave("old")

        await sub.away(lambda: backend.drop(conn_id))
        await backend.push("old", "left")
        await backend.push("r", "kept")
        assert (await sub.back()).recovered is True

        assert await got_until_marker(sub, backend.app, conn_id) == ["kept"]
        await backend.push("old", "still left")  # and it was not put back in it
        await backend.push("r", "still in r")
        assert await got_until_marker(sub, backend.app, conn_id) == ["still in r"]

    async def test_a_resume_while_the_old_connection_still_looks_open(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        first = await stack.enter_async_context(TcpProxy(server.port))
        second = await stack.enter_async_context(TcpProxy(server.port))
        sub = await subscribe(stack, [f"ws://127.0.0.1:{first.port}", f"ws://127.0.0.1:{second.port}"])
        conn_id, _ = await sub.connect()

        first.black_hole()  # the server's side of the link stays open and hears nothing
        await backend.push("r", "h1", "h2")  # written to the old link, discarded on the way
        sub.dialer.hold()
        reconnecting = asyncio.ensure_future(sub.client.force_reconnect())
        await next_of(sub.drops)
        await reconnecting
        old = backend.connection(conn_id)  # still open, as far as the server knows
        await backend.push("r", "h3")
        link = await sub.back()

        assert link.recovered is True
        assert sub.dialer.urls[-1] == f"ws://127.0.0.1:{second.port}{FeedApi.path}"
        assert await got_until_marker(sub, backend.app, conn_id) == ["h1", "h2", "h3"]
        assert await next_of(backend.closed) == conn_id  # the old connection was closed
        assert old.closed
        assert backend.connection(conn_id) is not old
        await backend.push("r", "after")  # once, though both were in the room for a while
        assert await got_until_marker(sub, backend.app, conn_id) == ["after"]


class TestNotRecovered:
    """When the server cannot know that it sends everything, the client is told, and its
    setup starts over."""

    async def test_past_the_window(self, start_server: StartServer, stack: contextlib.AsyncExitStack) -> None:
        window = 0.05
        backend = Backend(Recovery(window=window))
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()

        await sub.away(lambda: backend.drop(conn_id))
        assert await next_of(backend.closed) == conn_id  # the window runs from now
        await backend.push("r", "missed")
        await asyncio.sleep(10 * window)  # wall clock: let the window pass
        link = await sub.back()

        assert link.recovered is False
        new_id = await sub.client.outgoing.whoami()
        assert new_id != conn_id  # a new session
        assert await got_until_marker(sub, backend.app, new_id) == []  # nothing replayed
        await backend.push("r", "after")  # the setup joined the room again
        assert await got_until_marker(sub, backend.app, new_id) == ["after"]

    @pytest.mark.parametrize(("missed", "recovered"), [(3, True), (10, False)])
    async def test_a_trimmed_history(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack, missed: int, recovered: bool
    ) -> None:
        backend = Backend(Recovery(window=WINDOW, max_entries=3))
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()
        await backend.push("r", "before")
        assert await got_until_marker(sub, backend.app, conn_id) == ["before"]

        await sub.away(lambda: backend.drop(conn_id))
        texts = [f"p{n}" for n in range(missed)]
        await backend.push("r", *texts)
        link = await sub.back()

        assert link.recovered is recovered
        now_id = await sub.client.outgoing.whoami()
        assert await got_until_marker(sub, backend.app, now_id) == (texts if recovered else [])
        await backend.push("r", "after")
        assert await got_until_marker(sub, backend.app, now_id) == ["after"]

    async def test_another_identity_cannot_resume_the_session(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url, token="ann")
        conn_id, _ = await sub.connect()

        await sub.away(lambda: backend.drop(conn_id))
        await backend.push("r", "for ann's session")
        sub.token = "bob"  # the token provider now gives another identity's token
        link = await sub.back()

        assert link.recovered is False
        bob_id = await sub.client.outgoing.whoami()
        assert bob_id != conn_id
        assert await got_until_marker(sub, backend.app, bob_id) == []

    async def test_a_raw_peer_of_another_identity_gets_a_new_session(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        url = feed_url(server.url)
        async with ws_connect(url, open_timeout=WAIT) as ws:
            accepted = await handshake(ws, {"authorization": "Bearer ann", RECOVERY_HEADER: offer()})
            session: str = accepted.data["recovery"]["session"]
            await ws.send('r:RecoveryFeed.join:1:"r"')
            ann_id = (await recv_frame(ws)).data["data"]
        assert await next_of(backend.closed) == ann_id
        await backend.push("r", "for ann")

        async with ws_connect(url, open_timeout=WAIT) as ws:
            accepted = await handshake(ws, {"authorization": "Bearer bob", RECOVERY_HEADER: offer(session)})
            assert accepted.type == "k"
            assert accepted.data["recovery"]["recovered"] is False
            assert accepted.data["recovery"]["session"] != session
            await ws.send("r:RecoveryFeed.whoami:1:")
            bob_id = (await recv_frame(ws)).data["data"]
            assert bob_id != ann_id
            await backend.app.rooms.send_to_connection(bob_id, FeedClient.item, "for bob")
            frame = await recv_frame(ws)  # nothing of ann's came before it
            assert (frame.type, frame.data) == ("m", "for bob")

        async with ws_connect(url, open_timeout=WAIT) as ws:  # ann herself still can
            accepted = await handshake(ws, {"authorization": "Bearer ann", RECOVERY_HEADER: offer(session)})
            assert accepted.data["recovery"] == {"session": session, "recovered": True, "window": WINDOW}
            frame = await recv_frame(ws)
            assert (frame.type, frame.data) == ("m", "for ann")


class TestPlainPeers:
    """A peer that does not ask for recovery sees PROTOCOL.md's frames, unchanged."""

    async def test_a_raw_peer_gets_a_plain_k_and_plain_pushes(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        async with ws_connect(feed_url(server.url), open_timeout=WAIT) as ws:
            await ws.send('h:::{"authorization":"Bearer ann"}')
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            await ws.send('r:RecoveryFeed.join:1:"r"')
            answer = await recv_frame(ws)
            assert (answer.type, answer.id, answer.data["success"]) == ("s", "1", True)
            await backend.push("r", "hello")
            await backend.app.rooms.send_to_everyone(FeedClient.item, "all")
            assert await asyncio.wait_for(ws.recv(), WAIT) == 'm:RecoveryFeed.item::"hello"'
            assert await asyncio.wait_for(ws.recv(), WAIT) == 'm:RecoveryFeed.item::"all"'

    async def test_a_malformed_offer_is_served_as_no_offer(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        async with ws_connect(feed_url(server.url), open_timeout=WAIT) as ws:
            headers = {"authorization": "Bearer ann", RECOVERY_HEADER: "not json"}
            await ws.send("h:::" + json.dumps(headers))
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            await ws.send('r:RecoveryFeed.join:1:"r"')
            assert (await recv_frame(ws)).type == "s"
            await backend.push("r", "plain")
            assert await asyncio.wait_for(ws.recv(), WAIT) == 'm:RecoveryFeed.item::"plain"'

    async def test_a_client_that_does_not_ask_reconnects_as_before(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url, recover=False)
        conn_id, first = await sub.connect()
        assert first.recovered is None
        assert RECOVERY_HEADER not in backend.connection(conn_id).handshake_headers
        await backend.push("r", "live")
        assert await got_until_marker(sub, backend.app, conn_id) == ["live"]

        await sub.away(lambda: backend.drop(conn_id))
        await backend.push("r", "lost")
        link = await sub.back()

        assert (link.reconnect, link.recovered) == (True, None)
        new_id = await sub.client.outgoing.whoami()
        assert new_id != conn_id
        assert await got_until_marker(sub, backend.app, new_id) == []
        await backend.push("r", "again")
        assert await got_until_marker(sub, backend.app, new_id) == ["again"]


class TestWire:
    """The frames of docs/protocol.md, "Recovery", spoken by hand."""

    async def test_k_carries_the_session_and_each_push_its_position(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        node = backend.app.rooms.node
        async with ws_connect(feed_url(server.url), open_timeout=WAIT) as ws:
            await ws.send("h:::" + json.dumps({"authorization": "Bearer ann", RECOVERY_HEADER: "{}"}))
            raw_k = await asyncio.wait_for(ws.recv(), WAIT)
            assert isinstance(raw_k, str)
            assert raw_k.startswith('k:::{"recovery":{')
            recovery = json.loads(raw_k[4:])["recovery"]
            assert recovery["recovered"] is None
            assert recovery["window"] == WINDOW
            assert isinstance(recovery["session"], str)
            assert len(recovery["session"]) >= 16

            await ws.send('r:RecoveryFeed.join:1:"r"')
            assert (await recv_frame(ws)).type == "s"
            await backend.push("r", "one", "two")
            await backend.app.rooms.send_to_user("ann", FeedClient.item, "three")
            frames = [await recv_frame(ws) for _ in range(3)]

        assert [(f.type, f.path, f.data) for f in frames] == [
            ("m", ITEM, "one"),
            ("m", ITEM, "two"),
            ("m", ITEM, "three"),
        ]
        positions = [position(frame) for frame in frames]
        assert {found for found, _ in positions} == {node}
        first = positions[0][1]
        assert [seq for _, seq in positions] == [first, first + 1, first + 2]

    async def test_a_resume_by_hand_replays_what_came_after_its_position(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend()
        server = await start_server(backend.app)
        url = feed_url(server.url)
        async with ws_connect(url, open_timeout=WAIT) as ws:
            accepted = await handshake(ws, {"authorization": "Bearer ann", RECOVERY_HEADER: offer()})
            session: str = accepted.data["recovery"]["session"]
            await ws.send('r:RecoveryFeed.join:1:"r"')
            conn_id = (await recv_frame(ws)).data["data"]
            await backend.push("r", "one", "two", "three")
            frames = [await recv_frame(ws) for _ in range(3)]
        node, got = position(frames[0])  # "two" and "three" are taken as lost on the way
        assert await next_of(backend.closed) == conn_id
        await backend.push("r", "four", "five")

        async with ws_connect(url, open_timeout=WAIT) as ws:
            resume = offer(session, {node: got})
            accepted = await handshake(ws, {"authorization": "Bearer ann", RECOVERY_HEADER: resume})
            assert accepted.type == "k"
            assert accepted.data == {"recovery": {"session": session, "recovered": True, "window": WINDOW}}
            replayed = [await recv_frame(ws) for _ in range(4)]
            await backend.push("r", "six")
            live = await recv_frame(ws)
            await ws.send("r:RecoveryFeed.whoami:1:")
            assert (await recv_frame(ws)).data["data"] == conn_id

        assert [frame.data for frame in replayed] == ["two", "three", "four", "five"]
        assert [position(frame) for frame in [*replayed, live]] == [(node, got + n) for n in range(1, 6)]
        assert live.data == "six"

    async def test_the_session_skips_what_it_had_already(self) -> None:
        here, _there = memory_pair()
        seen: asyncio.Queue[str] = asyncio.Queue()

        async def item(text: str) -> None:
            seen.put_nowait(text)

        session = Session(
            here,
            Connection("client", FeedApi.path, None, "client"),
            incoming=Feed.server_to_client,
            outgoing=Feed.client_to_server,
        )
        session.bind_one(Feed.server_to_client.spec_for(FeedClient.item), item)
        session.positions = Positions({"n1": 2})
        for frame in (
            b'm:RecoveryFeed.item:n1.1:"old"',
            b'm:RecoveryFeed.item:n1.2:"had it"',
            b'm:RecoveryFeed.item:n1.3:"new"',
            b'm:RecoveryFeed.item:n1.3:"a duplicate"',
            b'm:RecoveryFeed.item:n2.1:"another node"',
            b'm:RecoveryFeed.item:n2.1:"its duplicate"',
            b'm:RecoveryFeed.item::"without a position"',
            b'm:RecoveryFeed.item:n1.4:"next"',
            b'm:RecoveryFeed.item::"end"',
        ):
            session.receive(frame)

        got: list[str] = []
        async with asyncio.timeout(WAIT):
            while (text := await seen.get()) != "end":
                got.append(text)
        assert got == ["new", "another node", "without a position", "next"]
        assert session.positions.snapshot() == {"n1": 4, "n2": 1}

    async def test_a_session_that_did_not_ask_drops_positioned_frames(self) -> None:
        here, _there = memory_pair()
        incidents: list[Incident] = []
        seen: list[str] = []

        async def item(text: str) -> None:
            seen.append(text)

        session = Session(
            here,
            Connection("client", FeedApi.path, None, "client"),
            incoming=Feed.server_to_client,
            outgoing=Feed.client_to_server,
            incidents=Incidents(incidents.append),
        )
        session.bind_one(Feed.server_to_client.spec_for(FeedClient.item), item)
        session.receive(b'm:RecoveryFeed.item:n1.1:"positioned"')
        assert [type(incident.error) for incident in incidents] == [grestws.FrameError]
        assert seen == []


class TestPositions:
    def test_take_moves_each_node_forward_and_skips_the_rest(self) -> None:
        positions = Positions()
        taken = [positions.take(raw) for raw in (b"a.1", b"a.1", b"b.7", b"a.3", b"a.2", b"b.8")]
        assert taken == [True, False, True, True, False, True]
        assert positions.snapshot() == {"a": 3, "b": 8}

    def test_a_malformed_position_is_taken_and_not_noted(self) -> None:
        positions = Positions({"a": 1})
        assert all(positions.take(raw) for raw in (b"a.x", b".3", b"a.", b"a1"))
        assert positions.snapshot() == {"a": 1}

    def test_the_node_heard_from_longest_ago_is_forgotten_first(self) -> None:
        positions = Positions()
        for n in range(MAX_NODES):
            positions.take(b"node%d.1" % n)
        positions.take(b"node0.2")  # heard from again: now the most recent
        positions.take(b"newcomer.1")
        kept = positions.snapshot()
        assert len(kept) == MAX_NODES
        assert "node1" not in kept
        assert kept["node0"] == 2
        assert kept["newcomer"] == 1


# -- edges ---------------------------------------------------------------------------------


class SwitchedHistory:
    """A :class:`~grestws.recovery.History` over another that a test can make fail a read
    (as Redis that cannot be reached does), or pause right after one."""

    def __init__(self, inner: History) -> None:
        self.inner = inner
        self.recovery = inner.recovery
        self.fail_reads = 0
        self.pause: asyncio.Event | None = None
        self.read_done = asyncio.Event()

    async def read(self, positions: Mapping[str, int], since: int) -> list[Envelope] | None:
        if self.fail_reads:
            self.fail_reads -= 1
            return None
        found = await self.inner.read(positions, since)
        self.read_done.set()
        if self.pause is not None:
            async with asyncio.timeout(WAIT):
                await self.pause.wait()
        return found

    def save(self, record: SessionRecord, *, open: bool) -> None:
        self.inner.save(record, open=open)

    async def load(self, token: str) -> SessionRecord | None:
        return await self.inner.load(token)


class SwitchedBroker(LocalBroker):
    """The local broker, with its history behind a :class:`SwitchedHistory`."""

    def __init__(self) -> None:
        super().__init__()
        self.history: SwitchedHistory | None = None

    def keep_history(self, recovery: Recovery) -> History:
        self.history = SwitchedHistory(super().keep_history(recovery))
        return self.history


class LaggingBroker(LocalBroker):
    """The local broker with Redis's lag: what is published is handed over (to the
    history) by a task of its own, in order, one per loop iteration and only while
    :attr:`flowing` is set; a publish returns once its envelope is handed over, as
    RedisBroker's does."""

    def __init__(self) -> None:
        super().__init__()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.queued: list[tuple[Envelope, asyncio.Future[bool]]] = []
        self._grew = asyncio.Condition()
        self._moving: asyncio.Task[None] | None = None

    async def publish(self, envelope: Envelope) -> bool:
        handed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        async with self._grew:
            self.queued.append((envelope, handed))
            self._grew.notify_all()
        if self._moving is None or self._moving.done():
            self._moving = asyncio.create_task(self._move())
        return await handed

    async def until_queued(self, count: int) -> None:
        """Wait (at most WAIT s) until ``count`` envelopes wait to be handed over."""
        async with asyncio.timeout(WAIT), self._grew:
            await self._grew.wait_for(lambda: len(self.queued) >= count)

    async def _move(self) -> None:
        while self.queued:
            async with asyncio.timeout(WAIT):
                await self.flowing.wait()
            await asyncio.sleep(0)  # a round trip: others run meanwhile
            envelope, handed = self.queued.pop(0)
            handed.set_result(await super().publish(envelope))


class TestEdges:
    """A history read that fails, pushes published while a resume reads the history, and
    a replay larger than what a socket buffers."""

    @pytest.mark.websockets_only("the bug is in Rooms.welcome, whatever the transport")
    async def test_a_failed_read_does_not_make_the_next_resume_replay_old_pushes(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        broker = SwitchedBroker()
        backend = Backend(broker=broker)
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()
        await backend.push("r", "p1", "p2")
        assert await got_until_marker(sub, backend.app, conn_id) == ["p1", "p2"]
        assert broker.history is not None

        broker.history.fail_reads = 1  # the history cannot be read: Redis is away, say
        await sub.away(lambda: backend.drop(conn_id))
        assert (await sub.back()).recovered is False
        now_id = await sub.client.outgoing.whoami()

        await sub.away(lambda: backend.drop(now_id))  # drops again before any push
        await sub.back()  # told True or False, either is fine: what it had must not come again
        assert await got_until_marker(sub, backend.app, await sub.client.outgoing.whoami()) == []

    @pytest.mark.websockets_only("the bug is in Rooms.welcome, whatever the transport")
    async def test_a_push_published_while_the_history_is_read_is_not_lost(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        broker = SwitchedBroker()
        backend = Backend(broker=broker)
        rooms = backend.app.rooms
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()
        history = broker.history
        assert history is not None

        await sub.away(lambda: backend.drop(conn_id))
        history.read_done.clear()
        history.pause = asyncio.Event()
        sub.dialer.release()
        async with asyncio.timeout(WAIT):
            await history.read_done.wait()  # the resume has read the history: RedisHistory awaits Redis here
        await rooms.send("r", FeedClient.item, "to its room")
        await rooms.send_to_user("ann", FeedClient.item, "to ann")
        await rooms.send_to_connection(conn_id, FeedClient.item, "to the connection")
        await rooms.send_to_everyone(FeedClient.item, "to everyone")
        history.pause.set()
        assert (await next_of(sub.links)).recovered is True

        assert await got_until_marker(sub, backend.app, conn_id) == [
            "to its room",
            "to ann",
            "to the connection",
            "to everyone",
        ]

    @pytest.mark.websockets_only("the order is Rooms.welcome's, whatever the transport")
    async def test_a_push_published_while_a_resume_waits_on_the_broker_is_not_lost(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        broker = LaggingBroker()
        backend = Backend(broker=broker)
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()

        await sub.away(lambda: backend.drop(conn_id))
        broker.flowing.clear()  # Redis lags
        sub.dialer.release()
        await broker.until_queued(1)  # the resume waits for its own envelope to be handed over
        pushing = asyncio.create_task(backend.push("r", "meanwhile"))
        await broker.until_queued(2)  # the push is queued behind it, not kept yet
        broker.flowing.set()
        await asyncio.wait_for(pushing, WAIT)
        assert (await next_of(sub.links)).recovered is True
        assert await got_until_marker(sub, backend.app, conn_id) == ["meanwhile"]

    @pytest.mark.websockets_only("what is buffered for a socket is the websockets transport's")
    async def test_a_replay_larger_than_the_socket_buffers_comes_whole(
        self, start_server: StartServer, stack: contextlib.AsyncExitStack
    ) -> None:
        backend = Backend(limits=grestws.Limits(close_timeout=0.25, max_dropped_pushes=None))
        server = await start_server(backend.app)
        sub = await subscribe(stack, server.url)
        conn_id, _ = await sub.connect()

        await sub.away(lambda: backend.drop(conn_id))
        texts = [f"{n:04d}-" + "x" * 32_000 for n in range(1000)]  # 32 MB
        await backend.push("r", *texts)
        assert (await sub.back()).recovered is True
        conn = backend.connection(conn_id)
        async with asyncio.timeout(WAIT):  # bounded polling: until the client read it all
            for _ in range(int(WAIT / 0.01)):
                if conn.buffered == 0:
                    break
                await asyncio.sleep(0.01)
        got = await got_until_marker(sub, backend.app, conn_id)
        assert len(got) == len(texts)
        assert got == texts


# -- a cluster ---------------------------------------------------------------------------

OPERATION_TIMEOUT = 0.5


@dataclass
class Node:
    """One "process" of the cluster: an App with a RedisBroker, served on a free port."""

    backend: Backend
    server: grestws.Server

    @property
    def app(self) -> grestws.App:
        return self.backend.app

    @property
    def url(self) -> str:
        return self.server.url


async def start_node(redis_server: RedisServer, stack: contextlib.AsyncExitStack) -> Node:
    broker = RedisBroker(redis_server.url, operation_timeout=OPERATION_TIMEOUT, backoff=(0.01, 0.1))
    backend = Backend(broker=broker)
    async with asyncio.timeout(WAIT):
        server = await grestws.serve(backend.app, "127.0.0.1", 0)

    async def close() -> None:
        async with asyncio.timeout(2 * WAIT):
            await server.close(timeout=1.0)

    stack.push_async_callback(close)
    return Node(backend, server)


async def session_kept(node: Node, writer: Node, conn_id: str, room: str) -> None:
    """Wait until ``node`` can load the session of ``writer``'s connection ``conn_id`` with
    ``room`` in it: sessions are written to Redis in the background. Bounded polling."""
    sessions, other = writer.app.rooms.sessions, node.app.rooms.sessions
    assert sessions is not None
    assert other is not None
    tracked = sessions.get(writer.backend.connection(conn_id))
    assert tracked is not None
    token = tracked.record.token
    async with asyncio.timeout(WAIT):
        for _ in range(int(WAIT / 0.01)):
            record = await other.history.load(token)
            if record is not None and room in record.rooms:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"session {token} with {room} not in Redis within {WAIT} s")


def of_node(got: list[str], prefix: str) -> list[str]:
    return [text for text in got if text.startswith(prefix)]


class TestCluster:
    """Two Apps with a RedisBroker each, one redis-server: a client resumes on the other."""

    async def test_a_client_resumes_on_another_node_with_every_push_it_missed(
        self, redis_server: RedisServer, stack: contextlib.AsyncExitStack
    ) -> None:
        a = await start_node(redis_server, stack)
        b = await start_node(redis_server, stack)
        sub = await subscribe(stack, [a.url, b.url])
        conn_id, _ = await sub.connect()
        assert sub.dialer.urls[-1].startswith(a.url)
        await a.backend.push("r", "a0")
        await b.backend.push("r", "b0")
        # the marker comes from b through Redis, after b0; a0 was written before
        assert await got_until_marker(sub, b.app, conn_id) == ["a0", "b0"]
        await session_kept(b, a, conn_id, "r")

        await sub.away(lambda: a.backend.drop(conn_id))
        await a.backend.push("r", "a1")
        await b.backend.push("r", "b1")
        await a.backend.push("r", "a2")
        await b.backend.push("r", "b2")
        await a.backend.push("r", "a3")
        await a.backend.push("elsewhere", "a-elsewhere")
        link = await sub.back()

        assert link.recovered is True
        assert sub.dialer.urls[-1].startswith(b.url)  # failover: the next URL first
        got = await got_until_marker(sub, b.app, conn_id)
        assert sorted(got) == ["a1", "a2", "a3", "b1", "b2"]
        assert of_node(got, "a") == ["a1", "a2", "a3"]
        assert of_node(got, "b") == ["b1", "b2"]
        assert await sub.client.outgoing.whoami() == conn_id
        await a.backend.push("r", "a4")  # in the room on b, without joining again
        await b.backend.push("r", "b3")
        # a4 comes through Redis, b3 from b itself: no order between them
        assert sorted(await got_until_marker(sub, a.app, conn_id)) == ["a4", "b3"]

    async def test_a_client_resumes_on_another_node_when_its_node_stops(
        self, redis_server: RedisServer, stack: contextlib.AsyncExitStack
    ) -> None:
        a = await start_node(redis_server, stack)
        b = await start_node(redis_server, stack)
        sub = await subscribe(stack, [a.url, b.url])
        conn_id, _ = await sub.connect()
        await b.backend.push("other", "b-other")  # b's stream, for a room it is not in
        await a.backend.push("r", "a0")
        assert await got_until_marker(sub, a.app, conn_id) == ["a0"]  # it never heard from b
        await session_kept(b, a, conn_id, "r")

        sub.dialer.hold()
        async with asyncio.timeout(2 * WAIT):
            await a.server.close(timeout=1.0)
        drop = await next_of(sub.drops)
        assert (drop.code, drop.reconnecting) == (1012, True)
        await b.backend.push("r", "b1", "b2", "b3")
        link = await sub.back()

        assert link.recovered is True
        assert sub.dialer.urls[-1].startswith(b.url)
        assert await got_until_marker(sub, b.app, conn_id) == ["b1", "b2", "b3"]
        assert await sub.client.outgoing.whoami() == conn_id


# -- the history, as data ----------------------------------------------------------------


def envelope(seq: int, time: int = 0, origin: str = "n1") -> Envelope:
    return Envelope(origin, Target.ROOM, "r", b'm:RecoveryFeed.item::"x"', seq=seq, time=time)


def seqs(found: list[Envelope] | None) -> list[int] | None:
    return None if found is None else [entry.seq for entry in found]


class TestReadAfter:
    @pytest.mark.parametrize(
        ("kept", "after", "complete_from", "expected"),
        [
            ([1, 2, 3, 4, 5], 2, 1, [3, 4, 5]),
            ([1, 2, 3, 4, 5], 5, 1, []),
            ([1, 2, 3, 4, 5], 0, 1, [1, 2, 3, 4, 5]),
            ([1, 2, 4, 5], 1, 1, None),  # 3 never reached the history
            ([1, 2, 4, 5], 2, 1, None),  # the first missed is not the next one
            ([1, 2, 4, 5], 4, 1, [5]),  # the gap is behind the client
            ([6, 7, 8], 3, 6, None),  # 4 and 5 were trimmed
            ([6, 7, 8], 5, 6, [6, 7, 8]),  # trimmed, but only what it had
            ([], 5, 10, None),  # nothing kept, and 6 to 9 were trimmed
            ([], 9, 10, []),
        ],
    )
    def test_after_a_position(
        self, kept: list[int], after: int, complete_from: int, expected: list[int] | None
    ) -> None:
        entries = [envelope(seq, time=seq) for seq in kept]
        assert seqs(read_after(entries, after, 0, complete_from)) == expected

    @pytest.mark.parametrize(
        ("kept", "since", "complete_from", "expected"),
        [
            ([(1, 100), (2, 200), (3, 300)], 200, 1, [2, 3]),
            ([(1, 100), (2, 200), (3, 300)], 400, 1, []),
            ([(4, 100), (5, 200), (6, 300)], 200, 4, [5, 6]),  # what was trimmed is older than since
            ([(4, 200), (5, 300)], 100, 4, None),  # what was trimmed may be newer than since
            ([], 100, 4, None),
            ([(1, 100), (2, 200), (4, 300)], 200, 1, None),  # a gap in what it missed
            ([(1, 100), (3, 200), (4, 300)], 200, 1, [3, 4]),  # a gap before since
        ],
    )
    def test_from_a_node_never_heard_from(
        self, kept: list[tuple[int, int]], since: int, complete_from: int, expected: list[int] | None
    ) -> None:
        entries = [envelope(seq, time=at) for seq, at in kept]
        assert seqs(read_after(entries, None, since, complete_from)) == expected


def now_ms() -> int:
    return int(time.time() * 1000)


class TestMemoryHistory:
    async def test_what_came_after_each_position(self) -> None:
        history = MemoryHistory(Recovery(window=WINDOW))
        now = now_ms()
        for seq in range(1, 6):
            history.append(envelope(seq, now))
        assert seqs(await history.read({"n1": 2}, 0)) == [3, 4, 5]
        assert seqs(await history.read({"n1": 5}, 0)) == []

    async def test_a_missing_seq_is_a_gap(self) -> None:
        history = MemoryHistory(Recovery(window=WINDOW))
        now = now_ms()
        for seq in (1, 2, 4):
            history.append(envelope(seq, now))
        assert await history.read({"n1": 1}, 0) is None
        assert await history.read({"n1": 2}, 0) is None
        assert seqs(await history.read({"n1": 4}, 0)) == []

    async def test_a_stream_that_begins_past_the_position(self) -> None:
        history = MemoryHistory(Recovery(window=WINDOW))
        now = now_ms()
        for seq in (5, 6):  # what came before never reached this history
            history.append(envelope(seq, now))
        assert await history.read({"n1": 2}, 0) is None
        assert seqs(await history.read({"n1": 4}, 0)) == [5, 6]

    async def test_past_max_entries_the_oldest_are_trimmed(self) -> None:
        history = MemoryHistory(Recovery(window=WINDOW, max_entries=3))
        now = now_ms()
        for seq in range(1, 7):
            history.append(envelope(seq, now))
        assert await history.read({"n1": 2}, 0) is None
        assert seqs(await history.read({"n1": 3}, 0)) == [4, 5, 6]
        assert await history.read({}, 0) is None  # a node never heard from: trimmed since

    async def test_entries_older_than_the_window_are_trimmed(self) -> None:
        history = MemoryHistory(Recovery(window=WINDOW))
        now = now_ms()
        history.append(envelope(1, now - int(3 * WINDOW * 1000)))
        history.append(envelope(2, now))
        assert await history.read({"n1": 0}, 0) is None
        assert seqs(await history.read({"n1": 1}, 0)) == [2]

    async def test_a_node_never_heard_from_gives_what_came_since(self) -> None:
        history = MemoryHistory(Recovery(window=WINDOW))
        now = now_ms()
        for seq in range(1, 4):
            history.append(envelope(seq, now, origin="n1"))
        for seq, ago in ((1, 3000), (2, 2000), (3, 1000)):
            history.append(envelope(seq, now - ago, origin="n2"))
        found = await history.read({"n1": 1}, now - 2000)
        assert found is not None
        assert [(entry.origin, entry.seq) for entry in found] == [("n1", 2), ("n1", 3), ("n2", 2), ("n2", 3)]

    async def test_one_node_that_cannot_be_complete_spoils_the_read(self) -> None:
        history = MemoryHistory(Recovery(window=WINDOW))
        now = now_ms()
        history.append(envelope(1, now, origin="n1"))
        for seq in (1, 3):
            history.append(envelope(seq, now, origin="n2"))
        assert await history.read({"n1": 0, "n2": 0}, 0) is None

    async def test_sessions_are_kept_while_open_and_for_the_window_after(self) -> None:
        window = 0.02
        history = MemoryHistory(Recovery(window=window))
        record = SessionRecord(token="t1", path=FeedApi.path, connection="c1", user="ann", created=now_ms())
        assert await history.load("t1") is None
        history.save(record, open=True)
        await asyncio.sleep(5 * window)  # wall clock: an open session outlives the window
        assert await history.load("t1") == record
        history.save(record, open=False)
        assert await history.load("t1") == record
        await asyncio.sleep(5 * window)  # wall clock: let the window pass
        assert await history.load("t1") is None

    def test_recovery_checks_its_bounds(self) -> None:
        with pytest.raises(ValueError, match="window"):
            Recovery(window=0)
        with pytest.raises(ValueError, match="max_entries"):
            Recovery(max_entries=0)
        assert msgspec.structs.asdict(Recovery()) == {"window": 120.0, "max_entries": 10_000}
