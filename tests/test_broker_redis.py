"""The Redis broker: rooms, users, connections and presence across a cluster of Apps.

Each "process" of a cluster is an App of its own with its own :class:`RedisBroker`, all
on one event loop and one real redis-server (the ``redis_server`` fixture); test clients
connect to each App in-process. ``HubApi`` is this module's contract: a client joins
rooms and says lines to a room; the server pushes ``said`` lines and ``marker`` pushes.

Exactly-once checks are deterministic, without sleeping: every awaited send has had its
PUBLISH answered by Redis, and Redis hands one channel's messages to every subscriber in
the order it executed the PUBLISHes. So once a client has a marker that a later send
pushed through the broker (:meth:`Cluster.flush`), every node has processed every
envelope published before it, and ``not_to_be_called`` sees any duplicate. Presence is
written in the background, so presence checks poll, bounded in time and count
(:func:`until`).

On Python 3.11 a cancellation can be lost inside redis-py; :func:`ended` cancels again
until a broker's tasks end, so that a test never waits on it for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

import grestws
import grestws.broker.redis as redis_broker
from grestws.broker import Broker, Envelope, LocalBroker, Member, Target, encode_envelope
from grestws.broker.redis import RedisBroker
from grestws.broker.url import broker_from_url
from grestws.permissions import AnyOf, Scope
from grestws.prometheus import PrometheusMetrics
from grestws.rooms import push_frame
from grestws.testkit import TestClient, call_on, expect, when
from tests.proxy import TcpProxy
from tests.redis_server import RedisServer

PRESENCE_TTL = 1.0
OPERATION_TIMEOUT = 0.5
BACKOFF = (0.01, 0.1)
SEND_BOUND = OPERATION_TIMEOUT + 0.5
"""What one send may take at most, Redis up or down."""
STOP_BOUND = 2 * OPERATION_TIMEOUT + 1.0
"""What stopping a broker may take at most: its presence removal, then closing."""

# -- the contract ------------------------------------------------------------------------


class Line(msgspec.Struct):
    room: str
    text: str


class HubServer(Protocol):
    @grestws.request
    async def join(self, room: str) -> str:
        """Join ``room``; this connection's id."""
        ...

    @grestws.request
    async def whoami(self) -> str:
        """This connection's id."""
        ...

    @grestws.request
    async def say(self, line: Line) -> int:
        """Push ``said(text)`` to the room's members but the sender, on every node."""
        ...


class HubClient(Protocol):
    @grestws.notify
    async def said(self, text: str) -> None: ...

    @grestws.notify
    async def marker(self, text: str) -> None: ...


Hub = grestws.SocketContract("HubApi", client_to_server=HubServer, server_to_client=HubClient)
HubApi = Hub.at("/ws/hub")


async def verify(token: str) -> grestws.Identity | None:
    """``ann`` is the user ann; ``ann+mod`` is ann with the scope ``hub:mod``."""
    user, _, extra = token.partition("+")
    return grestws.Identity(user, frozenset({"hub:mod"}) if extra == "mod" else frozenset())


ServerHubApi = HubApi.use(grestws.BearerAuth(verify=verify))


class HubHandler(HubServer):
    def __init__(self, conn: grestws.ServerConnection[HubClient], app: grestws.App) -> None:
        self.conn = conn
        self.app = app

    async def join(self, room: str) -> str:
        self.app.rooms.join(self.conn, room)
        return self.conn.id

    async def whoami(self) -> str:
        return self.conn.id

    async def say(self, line: Line) -> int:
        return await self.app.rooms.send(line.room, HubClient.said, line.text, exclude=self.conn)


def hub_app(broker: Broker) -> grestws.App:
    app = grestws.App(broker=broker)
    app.add(ServerHubApi, lambda conn: HubHandler(conn, app))
    return app


# -- the Redis server --------------------------------------------------------------------


# -- the cluster -------------------------------------------------------------------------

Hub_ = TestClient[HubServer, HubClient]


@dataclass
class Node:
    """One "process" of the cluster."""

    name: str
    app: grestws.App
    broker: RedisBroker


@dataclass
class Member_:
    """A connected test client: its connection's id on the server, its user, its node."""

    client: Hub_
    id: str
    user: str
    node: Node


_markers = itertools.count(1)


async def until(
    check: Callable[[], Awaitable[bool] | bool], what: str, *, within: float = 3.0, step: float = 0.01
) -> float:
    """Await until ``check()`` holds: at most ``within`` seconds and ``within / step`` checks.

    Returns:
        The seconds it took.
    """
    started = time.monotonic()
    async with asyncio.timeout(within + 1.0):
        for _ in range(int(within / step) + 1):
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return time.monotonic() - started
            await asyncio.sleep(step)
    raise AssertionError(f"not within {within} s: {what}")


class Cluster:
    """Apps with a RedisBroker each, and test clients connected to them; the fixture
    disconnects the clients, then stops the Apps."""

    def __init__(self, server: RedisServer, stack: contextlib.AsyncExitStack) -> None:
        self.server = server
        self.stack = stack
        self.nodes: list[Node] = []
        self.members: list[Member_] = []

    def broker(self, url: str | None = None, **options: Any) -> RedisBroker:
        settings: dict[str, Any] = {
            "presence_ttl": PRESENCE_TTL,
            "operation_timeout": OPERATION_TIMEOUT,
            "backoff": BACKOFF,
        }
        settings.update(options)
        return RedisBroker(url or self.server.url, **settings)

    async def node(self, name: str, *, start: bool = True, **options: Any) -> Node:
        broker = self.broker(**options)
        app = hub_app(broker)
        node = Node(name, app, broker)
        self.nodes.append(node)
        self.stack.push_async_callback(stop, app)
        if start:
            async with asyncio.timeout(OPERATION_TIMEOUT + 1.0):
                await app.start()
        return node

    async def nodes_(self, *names: str, **options: Any) -> list[Node]:
        return [await self.node(name, **options) for name in names]

    async def connect(self, node: Node, token: str, room: str | None = None, *, name: str = "") -> Member_:
        """A client of ``node`` as ``token``'s identity, in ``room`` if given."""
        client = call_on(HubApi, node.app, token=token, name=name or f"{token}@{node.name}", timeout=2.0)
        await client.connect()
        self.stack.push_async_callback(client.disconnect)
        conn_id = await (client.call.whoami() if room is None else client.call.join(room))
        member = Member_(client, conn_id, token.partition("+")[0], node)
        self.members.append(member)
        return member

    async def flush(self, *members: Member_, nodes: list[Node] | None = None) -> None:
        """Push a marker to everyone from each of ``nodes`` (default: every node), and wait
        for ``members`` (default: every open one) to get each: then each node has processed
        everything published before (a node gets the others' markers through its
        subscription)."""
        targets = members or tuple(m for m in self.members if m.client.state is grestws.ClientState.OPEN)
        texts: list[str] = []
        for node in self.nodes if nodes is None else nodes:
            if node.broker.stats.connected:
                text = f"marker-{next(_markers)}-{node.name}"
                async with asyncio.timeout(SEND_BOUND):
                    await node.app.rooms.send_to_everyone(HubClient.marker, text)
                texts.append(text)
        for member in targets:
            for text in texts:
                await expect(member.client.mock.marker).to_match(text)


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:
    async with contextlib.AsyncExitStack() as stack:
        yield Cluster(redis_server, stack)


async def presence_of(node: Node, room: str) -> list[tuple[str, str | None, str]]:
    """``room``'s members as ``node`` sees them: (connection, user, node id), sorted."""
    async with asyncio.timeout(SEND_BOUND):
        found = await node.app.rooms.presence(room)
    return sorted((m.connection, m.user, m.node) for m in found)


def expected(*members: Member_) -> list[tuple[str, str | None, str]]:
    return sorted((m.id, m.user, m.node.broker.node) for m in members)


def sees(node: Node, room: str, want: object) -> Callable[[], Awaitable[bool]]:
    """For :func:`until`: whether ``node`` sees exactly ``want`` in ``room``."""

    async def check() -> bool:
        return await presence_of(node, room) == want

    return check


def users_are(app: grestws.App, room: str, want: list[str]) -> Callable[[], Awaitable[bool]]:
    """For :func:`until`: whether ``app`` lists exactly the users ``want`` in ``room``."""

    async def check() -> bool:
        async with asyncio.timeout(SEND_BOUND):
            return await app.rooms.users(room) == want

    return check


def linked(node: Node, *, again: bool = False) -> Callable[[], bool]:
    """For :func:`until`: whether ``node``'s broker is linked (and has been linked again)."""
    return lambda: node.broker.stats.connected and (not again or node.broker.stats.reconnects >= 1)


async def wait_closed(member: Member_) -> tuple[int | None, str]:
    done: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()

    def closed(code: int | None, reason: str) -> None:
        if not done.done():
            done.set_result((code, reason))

    member.client.client.on_close(closed)
    async with asyncio.timeout(2.0):
        return await done


async def ended(tasks: list[asyncio.Task[None]], *, within: float = STOP_BOUND) -> None:
    """Wait for cancelled ``tasks`` to end, cancelling them again every 0.1 s: works around
    a bug, a cancellation lost on Python 3.11 (see
    :meth:`TestStop.test_stop_returns_whenever_a_presence_write_is_under_way`)."""
    async with asyncio.timeout(within):
        while not all(task.done() for task in tasks):
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=0.1)


async def stop(app: grestws.App) -> None:
    """``app.stop()``, bounded, with a watchdog that cancels the broker's tasks again while
    it runs (see :func:`ended`): it does not change when ``stop`` runs or what it does."""
    broker = app.rooms.broker
    tasks = list(broker._tasks) if isinstance(broker, RedisBroker) else []
    watchdog = asyncio.ensure_future(ended(tasks)) if tasks else None
    try:
        async with asyncio.timeout(STOP_BOUND):
            await app.stop()
    finally:
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.wait([watchdog])


async def kill(node: Node) -> None:
    """Make ``node``'s broker vanish as a process that died would: its tasks cancelled and
    its Redis connections cut, with nothing removed from Redis."""
    broker = node.broker
    tasks, broker._tasks = broker._tasks, []
    await ended(tasks)
    for client in (broker._redis, broker._listener):
        if client is not None:
            await client.aclose()
    broker._redis = broker._listener = None
    broker.stats.connected = False


# -- fan-out across nodes ----------------------------------------------------------------


class TestFanOut:
    async def test_a_room_send_reaches_every_member_on_every_node_once(self, cluster: Cluster) -> None:
        a, b, c = await cluster.nodes_("a", "b", "c")
        members = [
            await cluster.connect(a, "ann", "lobby"),
            await cluster.connect(a, "amy", "lobby"),
            await cluster.connect(b, "bob", "lobby"),
            await cluster.connect(c, "cy", "lobby"),
        ]
        outsider = await cluster.connect(b, "olga", "elsewhere")

        async with asyncio.timeout(SEND_BOUND):
            written = await a.app.rooms.send("lobby", HubClient.said, "hello")
        assert written == 2  # what a send returns counts this node's connections only
        for member in members:
            await expect(member.client.mock.said).to_match("hello")
        await cluster.flush()
        for member in (*members, outsider):
            expect(member.client.mock.said).not_to_be_called()
        assert a.broker.stats.published >= 1
        # a node's own envelopes come back on the channel and are not delivered again
        assert a.broker.stats.received == 2  # only b's and c's markers

    async def test_the_sender_is_left_out_on_every_node(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        ann = await cluster.connect(a, "ann", "lobby")
        amy = await cluster.connect(a, "amy", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        ben = await cluster.connect(b, "ben", "lobby")

        # through a handler: exclude=conn
        assert await expect(ann.client.call.say(Line("lobby", "from ann"))).to_match(1)
        for member in (amy, bob, ben):
            await expect(member.client.mock.said).to_match("from ann")
        # an excluded connection of another node is left out there
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "not ben", exclude=[amy.id, ben.id]) == 1
        for member in (ann, bob):
            await expect(member.client.mock.said).to_match("not ben")
        await cluster.flush()
        for member in (ann, amy, bob, ben):
            expect(member.client.mock.said).not_to_be_called()

    async def test_send_to_user_reaches_the_users_connections_on_every_node(self, cluster: Cluster) -> None:
        a, b, c = await cluster.nodes_("a", "b", "c")
        ann_a = await cluster.connect(a, "ann")
        ann_b = await cluster.connect(b, "ann")
        ann_c = await cluster.connect(c, "ann")
        ann_c2 = await cluster.connect(c, "ann", name="ann#2@c")
        bob = await cluster.connect(b, "bob")

        async with asyncio.timeout(SEND_BOUND):
            assert await b.app.rooms.send_to_user("ann", HubClient.said, "for ann") == 1
        for member in (ann_a, ann_b, ann_c, ann_c2):
            await expect(member.client.mock.said).to_match("for ann")
        # exclude holds there too
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send_to_user("ann", HubClient.said, "not c2", exclude=ann_c2.id) == 1
        for member in (ann_a, ann_b, ann_c):
            await expect(member.client.mock.said).to_match("not c2")
        await cluster.flush()
        for member in (ann_a, ann_b, ann_c, ann_c2, bob):
            expect(member.client.mock.said).not_to_be_called()

    async def test_send_to_connection_finds_a_connection_on_another_node(self, cluster: Cluster) -> None:
        a, b, c = await cluster.nodes_("a", "b", "c")
        ann = await cluster.connect(a, "ann")
        bob = await cluster.connect(b, "bob")
        bob2 = await cluster.connect(b, "bob", name="bob#2@b")
        cy = await cluster.connect(c, "cy")

        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send_to_connection(bob2.id, HubClient.said, "just you") == 0
            assert await a.app.rooms.send_to_connection(ann.id, HubClient.said, "here") == 1
        await expect(bob2.client.mock.said).to_match("just you")
        await expect(ann.client.mock.said).to_match("here")
        await cluster.flush()
        for member in (ann, bob, bob2, cy):
            expect(member.client.mock.said).not_to_be_called()

    async def test_send_to_everyone_reaches_every_node(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        ann = await cluster.connect(a, "ann")
        bob = await cluster.connect(b, "bob")
        ben = await cluster.connect(b, "ben")

        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send_to_everyone(HubClient.said, "all", exclude=ben.id) == 1
        for member in (ann, bob):
            await expect(member.client.mock.said).to_match("all")
        await cluster.flush()
        for member in (ann, bob, ben):
            expect(member.client.mock.said).not_to_be_called()

    async def test_metrics_count_what_each_node_publishes_and_receives(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        registry_a, registry_b = CollectorRegistry(), CollectorRegistry()
        PrometheusMetrics(registry_a).instrument(a.app)
        PrometheusMetrics(registry_b).instrument(b.app)
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        async with asyncio.timeout(SEND_BOUND):
            await a.app.rooms.send("lobby", HubClient.said, "hi")
        for member in (ann, bob):
            await expect(member.client.mock.said).to_match("hi")
        await cluster.flush()  # one send_to_everyone marker from each node
        published = "grestws_broker_published_total"
        delivered = "grestws_broker_delivered_total"
        assert registry_a.get_sample_value(published, {"kind": "room"}) == 1
        assert registry_b.get_sample_value(delivered, {"kind": "room"}) == 1
        assert registry_a.get_sample_value(delivered, {"kind": "room"}) is None  # not its own
        for registry in (registry_a, registry_b):
            assert registry.get_sample_value(published, {"kind": "everyone"}) == 1
            assert registry.get_sample_value(delivered, {"kind": "everyone"}) == 1

    async def test_only_applies_on_remote_nodes(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        mod_a = await cluster.connect(a, "ann+mod", "lobby")
        plain_a = await cluster.connect(a, "amy", "lobby")
        mod_b = await cluster.connect(b, "bob+mod", "lobby")
        plain_b = await cluster.connect(b, "ben", "lobby")

        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "mods", only=Scope("hub:mod")) == 1
            only = AnyOf(Scope("hub:mod"), Scope("hub:nobody"))
            assert await a.app.rooms.send_to_everyone(HubClient.said, "any mods", only=only) == 1
        for member in (mod_a, mod_b):
            await expect(member.client.mock.said).to_match("mods")
            await expect(member.client.mock.said).to_match("any mods")
        await cluster.flush()
        for member in (mod_a, plain_a, mod_b, plain_b):
            expect(member.client.mock.said).not_to_be_called()


class TestDisconnect:
    async def test_disconnect_user_closes_the_users_connections_on_every_node(self, cluster: Cluster) -> None:
        a, b, c = await cluster.nodes_("a", "b", "c")
        ann_a = await cluster.connect(a, "ann")
        ann_b = await cluster.connect(b, "ann")
        ann_c = await cluster.connect(c, "ann")
        bob = await cluster.connect(b, "bob")
        closes = [asyncio.ensure_future(wait_closed(m)) for m in (ann_a, ann_b, ann_c)]

        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.disconnect_user("ann", reason="banned") == 1
        assert [await close for close in closes] == [(1008, "banned")] * 3
        await cluster.flush()  # bob is still connected, and got nothing else
        expect(bob.client.mock.said).not_to_be_called()
        assert await bob.client.call.whoami() == bob.id

    async def test_disconnect_connection_closes_it_on_another_node(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        ann = await cluster.connect(a, "ann")
        bob = await cluster.connect(b, "bob")
        bob2 = await cluster.connect(b, "bob", name="bob#2@b")
        close = asyncio.ensure_future(wait_closed(bob2))

        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.disconnect_connection(bob2.id) == 0
        code, _ = await close
        assert code == 1008
        await cluster.flush(ann, bob)
        assert bob2.client.state is grestws.ClientState.CLOSED
        assert await bob.client.call.whoami() == bob.id


# -- presence ----------------------------------------------------------------------------


class TestPresence:
    async def test_presence_lists_exactly_the_members_on_every_node(self, cluster: Cluster) -> None:
        a, b, c = await cluster.nodes_("a", "b", "c")
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        bob2 = await cluster.connect(b, "bob", "lobby", name="bob#2@b")
        cy = await cluster.connect(c, "cy", "lobby")
        await cluster.connect(c, "olga", "elsewhere")
        await cluster.connect(a, "nobody")

        want = expected(ann, bob, bob2, cy)
        for node in (a, b, c):
            await until(sees(node, "lobby", want), f"{node.name} sees {want}")
            assert await node.app.rooms.users("lobby") == ["ann", "bob", "cy"]
        assert await a.app.rooms.presence("nowhere") == []

        # a member that leaves is removed soon; one of bob's two connections keeps bob there
        await bob2.client.disconnect()
        want = expected(ann, bob, cy)
        for node in (a, b, c):
            await until(sees(node, "lobby", want), f"{node.name} sees {want}")
            assert await node.app.rooms.users("lobby") == ["ann", "bob", "cy"]
        await bob.client.disconnect()
        for node in (a, b, c):
            await until(users_are(node.app, "lobby", ["ann", "cy"]), f"{node.name}: bob gone")

    async def test_members_of_a_dead_node_vanish_within_the_presence_ttl(self, cluster: Cluster) -> None:
        ttl = 0.6
        a, b = await cluster.nodes_("a", "b", presence_ttl=ttl)
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        await until(sees(a, "lobby", expected(ann, bob)), "both present")

        await kill(a)
        killed = time.monotonic()
        # nothing was removed: the dead node's members are still listed for now
        assert await presence_of(b, "lobby") == expected(ann, bob)
        await until(sees(b, "lobby", expected(bob)), "ann expired", within=ttl + 1.0)
        assert time.monotonic() - killed <= ttl + 0.5
        assert await b.app.rooms.users("lobby") == ["bob"]
        # the living node's own members stay, refreshed, past several TTLs
        await asyncio.sleep(ttl * 1.5)
        assert await presence_of(b, "lobby") == expected(bob)

    async def test_a_clean_stop_removes_the_nodes_members_at_once(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b", presence_ttl=30.0)
        ann = await cluster.connect(a, "ann", "lobby")
        await cluster.connect(a, "amy", "hall")
        bob = await cluster.connect(b, "bob", "lobby")
        await until(sees(b, "lobby", expected(ann, bob)), "both present")
        await until(users_are(b.app, "hall", ["amy"]), "amy present")

        await stop(a.app)
        assert await presence_of(b, "lobby") == expected(bob)
        assert await b.app.rooms.users("hall") == []

    async def test_shutdown_then_stop_removes_the_nodes_members_at_once(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b", presence_ttl=30.0)
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        await until(sees(b, "lobby", expected(ann, bob)), "both present")

        # what App.lifespan does on the way out, and grestws.serve on close
        async with asyncio.timeout(SEND_BOUND):
            await a.app.shutdown(timeout=1.0)
        await stop(a.app)
        assert await presence_of(b, "lobby") == expected(bob)

    async def test_a_leave_right_before_stop_is_removed(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b", presence_ttl=30.0)
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        await until(sees(b, "lobby", expected(ann, bob)), "both present")

        (conn,) = a.app.rooms.members("lobby")
        a.app.rooms.leave(conn, "lobby")
        await stop(a.app)
        assert await presence_of(b, "lobby") == expected(bob)


# -- Redis going away --------------------------------------------------------------------


class TestOutage:
    async def test_sends_go_on_while_redis_is_down_and_the_cluster_heals(
        self, cluster: Cluster, redis_server: RedisServer
    ) -> None:
        a, b = await cluster.nodes_("a", "b")
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        await until(sees(a, "lobby", expected(ann, bob)), "both present")

        redis_server.stop()
        # the first send may find the link still marked up: it fails fast, dropped
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "during 1") == 1
        await expect(ann.client.mock.said).to_match("during 1")
        await until(lambda: not a.broker.stats.connected and not b.broker.stats.connected, "links down")
        assert a.broker.stats.dropped == 1
        for i in (2, 3):
            async with asyncio.timeout(SEND_BOUND):
                assert await a.app.rooms.send("lobby", HubClient.said, f"during {i}") == 1
            await expect(ann.client.mock.said).to_match(f"during {i}")
        async with asyncio.timeout(SEND_BOUND):
            assert await b.app.rooms.send_to_user("ann", HubClient.said, "to ann") == 0
        assert a.broker.stats.dropped == 3
        assert b.broker.stats.dropped == 1
        # presence falls back to the node's own members, without waiting
        assert await presence_of(a, "lobby") == expected(ann)
        assert await b.app.rooms.users("lobby") == ["bob"]
        assert a.broker.stats.reconnects == 0

        redis_server.start()
        for node in (a, b):
            await until(linked(node, again=True), f"{node.name} linked again")
        # Redis came back empty: every node writes its presence again
        for node in (a, b):
            await until(sees(node, "lobby", expected(ann, bob)), "rewritten")

        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "after") == 1
            assert await b.app.rooms.send_to_user("ann", HubClient.said, "to ann again") == 0
        await expect(ann.client.mock.said).to_match("after")
        await expect(bob.client.mock.said).to_match("after")
        await expect(ann.client.mock.said).to_match("to ann again")
        await cluster.flush()
        # at most once: what was dropped is never delivered late
        for member in (ann, bob):
            expect(member.client.mock.said).not_to_be_called()

    async def test_a_hung_redis_delays_a_send_by_at_most_the_operation_timeout(
        self, cluster: Cluster, redis_server: RedisServer
    ) -> None:
        a, b = await cluster.nodes_("a", "b")
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)  # connections stay open, nothing answers
        try:
            started = time.monotonic()
            async with asyncio.timeout(SEND_BOUND):
                assert await a.app.rooms.send("lobby", HubClient.said, "hung") == 1
            assert time.monotonic() - started >= OPERATION_TIMEOUT * 0.9
            await expect(ann.client.mock.said).to_match("hung")
            assert a.broker.stats.dropped == 1
            # presence falls back to the node's own members within the timeout
            assert await presence_of(a, "lobby") == expected(ann)
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        # the link works again at once; the "dropped" envelope had reached Redis's socket,
        # so it may still come: at most once, never twice
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "again") == 1
        await expect(ann.client.mock.said).to_match("again")
        await expect(bob.client.mock.said).to_match("again")
        await cluster.flush()
        with contextlib.suppress(AssertionError):
            await expect(bob.client.mock.said).to_match("hung", timeout=0)
        for member in (ann, bob):
            expect(member.client.mock.said).not_to_be_called()

    async def test_a_full_outbox_drops_at_once(
        self, cluster: Cluster, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(redis_broker, "MAX_OUTBOX", 3)
        a, b = await cluster.nodes_("a", "b")
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        when(bob.client.mock.said).ignore()  # what a hung Redis lets through later is not the point
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            sends = [
                asyncio.ensure_future(a.app.rooms.send("lobby", HubClient.said, f"q{i}")) for i in range(5)
            ]
            # three wait in the outbox for the hung Redis; the two past it are dropped at once
            done, _ = await asyncio.wait(sends, timeout=OPERATION_TIMEOUT / 2)
            assert done == set(sends[3:])
            assert a.broker.stats.dropped == 2
            async with asyncio.timeout(SEND_BOUND):
                assert await asyncio.gather(*sends) == [1] * 5  # delivered here all the same
            assert a.broker.stats.dropped == 5
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        for i in range(5):
            await expect(ann.client.mock.said).to_match(f"q{i}")
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "flowing") == 1
        await expect(ann.client.mock.said).to_match("flowing")
        await cluster.flush()
        expect(ann.client.mock.said).not_to_be_called()

    async def test_start_with_redis_down_returns_and_links_once_it_is_up(
        self, cluster: Cluster, redis_server: RedisServer
    ) -> None:
        b = await cluster.node("b")
        bob = await cluster.connect(b, "bob", "lobby")
        redis_server.stop()
        await until(lambda: not b.broker.stats.connected, "b down")

        a = await cluster.node("a", start=False)
        started = time.monotonic()
        async with asyncio.timeout(OPERATION_TIMEOUT + 1.0):
            await a.app.start()
        assert time.monotonic() - started <= OPERATION_TIMEOUT + 0.3
        assert not a.broker.stats.connected
        ann = await cluster.connect(a, "ann", "lobby")
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "lost") == 1
        await expect(ann.client.mock.said).to_match("lost")
        assert a.broker.stats.dropped == 1

        redis_server.start()
        for node in (a, b):
            await until(linked(node), f"{node.name} linked")
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "found") == 1
        await expect(ann.client.mock.said).to_match("found")
        await expect(bob.client.mock.said).to_match("found")
        await until(sees(b, "lobby", expected(ann, bob)), "both present")
        await cluster.flush()
        for member in (ann, bob):
            expect(member.client.mock.said).not_to_be_called()

    async def test_a_broker_that_never_linked_starts_within_the_operation_timeout(
        self, redis_server: RedisServer
    ) -> None:
        port = redis_server.port
        redis_server.stop()
        broker = RedisBroker(
            f"redis://127.0.0.1:{port}/0", operation_timeout=OPERATION_TIMEOUT, backoff=BACKOFF
        )
        delivered: list[Envelope] = []
        started = time.monotonic()
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT + 1.0):
                await broker.start(delivered.append, list)
            assert time.monotonic() - started <= OPERATION_TIMEOUT + 0.3
            assert not broker.stats.connected
            async with asyncio.timeout(SEND_BOUND):
                assert await broker.publish(Envelope("x", Target.ROOM, "lobby")) is False
                assert await broker.present("lobby") is None
            assert broker.stats.dropped == 1
            redis_server.start()
            await until(lambda: broker.stats.connected, "linked")
        finally:
            async with asyncio.timeout(SEND_BOUND):
                await broker.stop()
        assert not broker.stats.connected
        assert delivered == []


class Partition(TcpProxy):
    """The proxy in front of Redis: :meth:`cut` is a network partition that Redis outlives,
    keeping its data."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
async def partition(redis_server: RedisServer) -> AsyncIterator[Partition]:
    proxy = Partition(redis_server.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


class TestPartition:
    """The link to Redis lost while Redis keeps its data (a network partition)."""

    async def test_a_join_during_a_partition_is_written_once_linked(
        self, cluster: Cluster, partition: Partition
    ) -> None:
        a = await cluster.node("a", url=partition.url, presence_ttl=30.0)
        b = await cluster.node("b", presence_ttl=30.0)
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        await until(sees(b, "lobby", expected(ann, bob)), "both present")

        partition.cut()
        await until(lambda: not a.broker.stats.connected, "a cut off")
        assert b.broker.stats.connected
        amy = await cluster.connect(a, "amy", "lobby")
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "cut off") == 2
            assert await b.app.rooms.send("lobby", HubClient.said, "unheard") == 1
        for member in (ann, amy):
            await expect(member.client.mock.said).to_match("cut off")
        await expect(bob.client.mock.said).to_match("unheard")
        assert await presence_of(a, "lobby") == expected(ann, amy)  # its own, while cut off

        partition.heal()
        await until(lambda: a.broker.stats.connected and a.broker.stats.reconnects == 1, "a linked again")
        await until(sees(b, "lobby", expected(ann, amy, bob)), "amy written")
        await cluster.flush()
        for member in (ann, amy, bob):
            expect(member.client.mock.said).not_to_be_called()

    async def test_a_leave_during_a_partition_is_removed_once_linked(
        self, cluster: Cluster, partition: Partition
    ) -> None:
        a = await cluster.node("a", url=partition.url, presence_ttl=30.0)
        b = await cluster.node("b", presence_ttl=30.0)
        ann = await cluster.connect(a, "ann", "lobby")
        amy = await cluster.connect(a, "amy", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        await until(sees(b, "lobby", expected(ann, amy, bob)), "all present")

        partition.cut()
        await until(lambda: not a.broker.stats.connected, "a cut off")
        await amy.client.disconnect()
        # the presence task has taken the leave (it clears the flag as it takes them)
        await until(lambda: not a.broker._dirty.is_set(), "the leave taken")
        partition.heal()
        await until(lambda: a.broker.stats.connected and a.broker.stats.reconnects == 1, "a linked again")
        await until(sees(b, "lobby", expected(ann, bob)), "amy gone", within=2.0)


class TestStop:
    async def test_stop_returns_whenever_a_presence_write_is_under_way(
        self, redis_server: RedisServer
    ) -> None:
        members = [Member("lobby", "c1", "ann", "")]
        for iterations in range(40):  # stop() one more loop iteration later each time
            broker = RedisBroker(redis_server.url, operation_timeout=OPERATION_TIMEOUT, backoff=BACKOFF)
            async with asyncio.timeout(SEND_BOUND):
                await broker.start(lambda envelope: None, lambda: members)
            tasks = list(broker._tasks)
            broker.presence_changed(members, ())  # a join: the presence task writes it
            for _ in range(iterations):
                await asyncio.sleep(0)
            stopping = asyncio.ensure_future(broker.stop())
            try:
                done, _ = await asyncio.wait([stopping], timeout=STOP_BOUND)
                assert stopping in done, f"stop() {iterations} iterations after a join never returns"
            finally:
                await ended(tasks)
                async with asyncio.timeout(STOP_BOUND):
                    await stopping

    async def test_a_cancelled_stop_is_cancelled(self, redis_server: RedisServer) -> None:
        broker = RedisBroker(redis_server.url, operation_timeout=OPERATION_TIMEOUT, backoff=BACKOFF)
        async with asyncio.timeout(SEND_BOUND):
            await broker.start(lambda envelope: None, list)
        stopping = asyncio.ensure_future(broker.stop())
        await asyncio.sleep(0)  # stop() has cancelled its tasks and waits for them
        stopping.cancel()
        try:
            async with asyncio.timeout(SEND_BOUND):
                await asyncio.wait([stopping])
            assert stopping.cancelled()
        finally:
            async with asyncio.timeout(SEND_BOUND):
                await broker.stop()
        assert not broker.stats.connected

    async def test_a_publish_while_stopping_returns_within_the_operation_timeout(
        self, redis_server: RedisServer
    ) -> None:
        broker = RedisBroker(redis_server.url, operation_timeout=OPERATION_TIMEOUT, backoff=BACKOFF)
        members = [Member("lobby", "c1", "ann", "")]
        async with asyncio.timeout(SEND_BOUND):
            await broker.start(lambda envelope: None, lambda: members)
        tasks = list(broker._tasks)
        stopping = asyncio.ensure_future(broker.stop())
        try:
            async with asyncio.timeout(STOP_BOUND):
                await asyncio.wait(tasks)  # stop() has ended its tasks; it removes ann now
            publishing = asyncio.ensure_future(broker.publish(Envelope("x", Target.ROOM, "lobby")))
            done, _ = await asyncio.wait([publishing], timeout=OPERATION_TIMEOUT + 0.5)
            assert publishing in done, "publish() still waits"
            assert publishing.result() is False
        finally:
            async with asyncio.timeout(STOP_BOUND):
                await stopping
            if not publishing.done():
                publishing.cancel()
                await asyncio.wait([publishing])

    async def test_stop_is_idempotent_and_a_stopped_app_starts_again(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        bob = await cluster.connect(b, "bob", "lobby")
        first = a.broker.node
        await stop(a.app)
        await stop(a.app)
        assert not a.broker.stats.connected
        # a connection starts the broker again, as a node with a new id
        ann = await cluster.connect(a, "ann", "lobby")
        assert linked(a)()
        assert a.broker.node != first
        async with asyncio.timeout(SEND_BOUND):
            assert await a.app.rooms.send("lobby", HubClient.said, "back") == 1
        for member in (ann, bob):
            await expect(member.client.mock.said).to_match("back")
        await until(sees(b, "lobby", expected(ann, bob)), "both present")
        await cluster.flush()
        for member in (ann, bob):
            expect(member.client.mock.said).not_to_be_called()


# -- what arrives on the channel ---------------------------------------------------------


class TestChannel:
    async def test_malformed_messages_are_counted_and_ignored(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        ann = await cluster.connect(a, "ann", "lobby")
        bob = await cluster.connect(b, "bob", "lobby")
        junk = [
            b"",
            b"\xff\x00 not msgpack",
            msgspec.msgpack.encode({"origin": "x"}),
            msgspec.msgpack.encode(["x", 99, "lobby"]),  # no such target
            msgspec.msgpack.encode(["x", 1]),  # too short
            msgspec.json.encode(["x", 1, "lobby"]),  # JSON, not msgpack
        ]
        raw = aioredis.Redis.from_url(cluster.server.url)
        try:
            for data in junk:
                assert await raw.publish(a.broker.channel, data) == 2  # both nodes listen
        finally:
            await raw.aclose()
        await cluster.flush()
        for node in (a, b):
            assert node.broker.stats.malformed == len(junk)
            assert node.broker.stats.received == 1  # the other node's marker
        for member in (ann, bob):
            expect(member.client.mock.said).not_to_be_called()
        # the nodes go on as before
        async with asyncio.timeout(SEND_BOUND):
            await b.app.rooms.send("lobby", HubClient.said, "still here")
        for member in (ann, bob):
            await expect(member.client.mock.said).to_match("still here")

    async def test_an_envelope_naming_no_permission_is_malformed(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        bob = await cluster.connect(b, "bob", "lobby")
        frame = push_frame(Hub.server_to_client.by_function[HubClient.said], "x")
        bad = [42, {"bogus": ["hub:mod"]}, {"any": [{"all": 7}]}]
        raw = aioredis.Redis.from_url(cluster.server.url)
        try:
            for only in bad:
                envelope = Envelope("elsewhere", Target.ROOM, "lobby", frame, only=only)
                await raw.publish(a.broker.channel, encode_envelope(envelope))
        finally:
            await raw.aclose()
        await cluster.flush()  # and no ERROR logged (the conftest checks)
        expect(bob.client.mock.said).not_to_be_called()
        for node in (a, b):
            assert node.broker.stats.malformed == len(bad)

    async def test_an_envelope_of_another_contract_is_ignored(self, cluster: Cluster) -> None:
        a, b = await cluster.nodes_("a", "b")
        bob = await cluster.connect(b, "bob", "lobby")
        envelope = Envelope("elsewhere", Target.ROOM, "lobby", b"m:OtherApi.said::1")
        raw = aioredis.Redis.from_url(cluster.server.url)
        try:
            await raw.publish(a.broker.channel, encode_envelope(envelope))
        finally:
            await raw.aclose()
        await cluster.flush()
        expect(bob.client.mock.said).not_to_be_called()
        assert b.broker.stats.received == 2  # it, and a's marker
        assert b.broker.stats.malformed == 0

    async def test_namespaces_keep_clusters_apart(self, cluster: Cluster) -> None:
        a, a2 = await cluster.nodes_("a", "a2")
        o, o2 = await cluster.nodes_("o", "o2", namespace="other")
        assert o.broker.channel == "other:fanout" != a.broker.channel == "grestws:fanout"
        ann = await cluster.connect(a, "ann", "lobby")
        amy = await cluster.connect(a2, "amy", "lobby")
        olga = await cluster.connect(o, "olga", "lobby")
        oscar = await cluster.connect(o2, "oscar", "lobby")
        async with asyncio.timeout(SEND_BOUND):
            await a.app.rooms.send("lobby", HubClient.said, "mine")
        await expect(ann.client.mock.said).to_match("mine")
        await expect(amy.client.mock.said).to_match("mine")
        await until(sees(a, "lobby", expected(ann, amy)), "ann and amy")
        await until(sees(o, "lobby", expected(olga, oscar)), "olga and oscar")
        await cluster.flush(olga, oscar, nodes=[o, o2])
        await cluster.flush(ann, amy, nodes=[a, a2])  # none of o's markers came before it
        for member in cluster.members:
            expect(member.client.mock.said).not_to_be_called()
            expect(member.client.mock.marker).not_to_be_called()
        assert o.broker.stats.received == o2.broker.stats.received == 1


# -- choosing a broker by URL ------------------------------------------------------------


class TestBrokerFromUrl:
    @pytest.mark.parametrize(
        "url",
        ["redis://127.0.0.1:6379/0", "REDIS://localhost", "rediss://h:6380/1", "unix:///tmp/r.sock?db=2"],
    )
    def test_redis_urls(self, url: str) -> None:
        broker = broker_from_url(url)
        assert isinstance(broker, RedisBroker)
        assert broker.url == url
        assert broker.channel == "grestws:fanout"
        assert not broker.stats.connected

    def test_the_brokers_options_come_from_the_query(self) -> None:
        broker = broker_from_url(
            "redis://127.0.0.1:6379/0?namespace=chat&presence_ttl=5&client_name=x"
            "&operation_timeout=0.5&backoff=0.1,2"
        )
        assert isinstance(broker, RedisBroker)
        assert broker.url == "redis://127.0.0.1:6379/0?client_name=x"
        assert broker.channel == "chat:fanout"
        assert (broker.presence_ttl, broker.operation_timeout, broker.backoff) == (5.0, 0.5, (0.1, 2.0))

    @pytest.mark.parametrize(
        ("url", "match"),
        [
            ("redis://h/0?bogus=1", "unknown query parameter 'bogus'"),
            ("redis://h/0?presence_ttl=-1", "presence_ttl must be a positive number"),
            ("redis://h/0?backoff=2,1", "backoff must be FIRST,LONGEST"),
            ("redis://h/0?socket_timeout=1", "socket_timeout is set by the broker"),
            ("redis://h/0?namespace=", "namespace must not be empty"),
            ("memory://x", "memory:// takes nothing"),
        ],
    )
    def test_bad_options(self, url: str, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            broker_from_url(url)

    def test_a_password_stays_out_of_messages(self) -> None:
        with pytest.raises(ValueError, match="unknown query parameter") as failure:
            broker_from_url("redis://user:s3cret@h:6379/0?bogus=1")
        assert "s3cret" not in str(failure.value)
        broker = broker_from_url("redis://user:s3cret@h:6379/0")
        assert isinstance(broker, RedisBroker)
        assert "s3cret" not in repr(broker) + broker.shown_url

    def test_memory(self) -> None:
        broker = broker_from_url("memory://")
        assert isinstance(broker, LocalBroker)
        assert broker.stats.connected

    @pytest.mark.parametrize("url", ["kafka://h:9092", "http://127.0.0.1:6379", "Nats://h"])
    def test_an_unknown_scheme(self, url: str) -> None:
        with pytest.raises(ValueError, match="unknown broker URL scheme"):
            broker_from_url(url)

    @pytest.mark.parametrize("url", ["127.0.0.1:6379", "", "://h"])
    def test_not_a_url(self, url: str) -> None:
        with pytest.raises(ValueError, match="not a broker URL"):
            broker_from_url(url)

    async def test_a_redis_url_makes_a_working_cluster(self, redis_server: RedisServer) -> None:
        apps = [hub_app(broker_from_url(redis_server.url)) for _ in range(2)]
        try:
            for app in apps:
                async with asyncio.timeout(3.0):
                    await app.start()
            async with (
                call_on(HubApi, apps[0], token="ann", name="ann") as ann,
                call_on(HubApi, apps[1], token="bob", name="bob") as bob,
            ):
                await ann.call.join("lobby")
                await bob.call.join("lobby")
                await expect(ann.call.say(Line("lobby", "hi bob"))).to_match(0)
                await expect(bob.mock.said).to_match("hi bob")
                await until(users_are(apps[0], "lobby", ["ann", "bob"]), "both present")
                members = await apps[1].rooms.presence("lobby")
                assert {(m.user, m.node) for m in members} == {
                    ("ann", apps[0].rooms.node),
                    ("bob", apps[1].rooms.node),
                }
                assert [m.room for m in members] == ["lobby", "lobby"]
        finally:
            for app in apps:
                await stop(app)
