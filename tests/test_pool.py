"""ClientPool over real sockets: which acquires share a client, one connect for many
waiters, releases and the idle timeout, failures, clients that close by themselves, and
closing the pool.

The server checks bearer tokens (``secret-<name>``, as the chat example does) behind a
:class:`Gate` that a test can hold shut, so a connect under way stays observable; a
:class:`Tally` counts on the server side the connections it accepted and saw close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import pytest

import grestws
from examples.chat.server import verify
from grestws.exceptions import ConnectionLostError
from grestws.pool import ClientPool
from grestws.reconnect import LinkInfo
from grestws.transports import Dialed, Transport
from grestws.transports.websockets import WebsocketsDialer
from tests.conftest import StartServer
from tests.servers import ServedApp
from tests.support import WAIT, Hub, RoomApi, RoomClient, RoomContract, RoomHandler, RoomServer, next_item

pytestmark = pytest.mark.websockets_only(
    "ClientPool is client-side and does the same against any server: grestws.serve shows it"
)

RoomClientT = grestws.Client[RoomServer, RoomClient]

ANN = {"authorization": "Bearer secret-ann"}
BOB = {"authorization": "Bearer secret-bob"}
NOBODY = {"authorization": "Bearer nobody"}


class Seat(msgspec.Struct):
    room: str = "lobby"


RoomByQuery = RoomContract.at("/ws/room-q", query=Seat)
"""RoomApi's contract at a second path, with a typed query."""


class Gate:
    """The server's token check (the chat example's), which waits while the gate is shut.

    Attributes:
        open: Checks go on once this is set (set from the start).
        reached: Set once a check waits at the gate or passes it.
        tokens: Every token checked, in order.
    """

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.reached = asyncio.Event()
        self.tokens: list[str] = []

    def shut(self) -> None:
        self.open.clear()
        self.reached.clear()

    async def verify(self, token: str) -> grestws.Identity | None:
        self.tokens.append(token)
        self.reached.set()
        await self.open.wait()
        return await verify(token)


class Tally:
    """What the App's hooks saw: the connections it accepted (``on_connect``), those of
    them that closed since (``on_disconnect``), and disconnects of connections that
    ``on_connect`` never saw."""

    def __init__(self, app: grestws.App) -> None:
        self.connected = 0
        self.disconnected = 0
        self.unpaired = 0
        self.codes: list[int | None] = []
        self._open: set[grestws.ServerConnection[Any]] = set()
        self._changed = asyncio.Condition()
        app.on_connect(self._connect)
        app.on_disconnect(self._disconnect)

    async def _connect(self, conn: grestws.ServerConnection[Any]) -> None:
        async with self._changed:
            self.connected += 1
            self._open.add(conn)
            self._changed.notify_all()

    async def _disconnect(self, conn: grestws.ServerConnection[Any], code: int | None, reason: str) -> None:
        async with self._changed:
            if conn in self._open:
                self._open.discard(conn)
                self.disconnected += 1
                self.codes.append(code)
            else:
                self.unpaired += 1
            self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait (at most WAIT s) until ``predicate()`` holds."""

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), WAIT)

    async def quiet(self) -> None:
        """Wait until every connection accepted has closed."""
        await self.until(lambda: not self._open)


class Site:
    """One served App: RoomApi and RoomByQuery behind the bearer check."""

    def __init__(self, server: ServedApp, hub: Hub, gate: Gate, tally: Tally) -> None:
        self.server = server
        self.hub = hub
        self.gate = gate
        self.tally = tally

    @property
    def url(self) -> str:
        return self.server.url

    async def all_closed(self) -> None:
        """Wait until every connection the server accepted has closed and the App holds
        none (handshakes under way included)."""
        await self.tally.quiet()
        await until(lambda: not self.server.app.connections.owned_by(None))
        assert not self.server.connections


StartSite = Callable[[], Awaitable[Site]]


@pytest.fixture
async def start_site(start_server: StartServer) -> StartSite:
    """``site = await start_site()``: a new server on 127.0.0.1 at a free port."""

    async def start() -> Site:
        hub, gate = Hub(), Gate()
        auth = grestws.BearerAuth(verify=gate.verify)
        app = grestws.App()
        app.add(RoomApi.use(auth), lambda conn: RoomHandler(conn, hub))
        app.add(RoomByQuery.use(auth), lambda conn: RoomHandler(conn, hub))
        tally = Tally(app)
        return Site(await start_server(app), hub, gate, tally)

    return start


@pytest.fixture
async def site(start_site: StartSite) -> Site:
    return await start_site()


class RecordingDialer:
    """The default dialer, keeping every transport it opened: a test waits for a
    cancelled connect's socket to close before the server answers its handshake."""

    def __init__(self) -> None:
        self.transports: list[Transport] = []
        self._dial = WebsocketsDialer()

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        dialed = await self._dial(url, headers)
        self.transports.append(dialed.transport)
        return dialed

    async def all_closed(self) -> None:
        await asyncio.wait_for(asyncio.gather(*(t.wait_closed() for t in self.transports)), WAIT)


def state_of(client: grestws.Client[Any, Any]) -> grestws.ClientState:
    """The client's state now (a call, so that type checkers do not narrow it)."""
    return client.state


def close_event(client: grestws.Client[Any, Any]) -> asyncio.Event:
    """Set when ``client`` closes for good."""
    event = asyncio.Event()
    client.on_close(lambda code, reason: event.set())
    return event


async def until(predicate: Callable[[], bool]) -> None:
    """Let the loop run (at most WAIT s) until ``predicate()`` holds."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 - nothing signals these changes
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), WAIT)


def identities(site: Site) -> list[str]:
    return sorted(conn.identity.id for conn in site.server.connections if conn.identity is not None)


class TestKeys:
    async def test_same_url_schema_and_headers_share_one_client(self, site: Site) -> None:
        async with ClientPool() as pool:
            first = await pool.acquire(site.url, RoomApi, headers=ANN)
            again = await pool.acquire([site.url], RoomApi, headers=dict(ANN))
            same = await pool.acquire(site.url, RoomApi, headers={**ANN, "x-trace": "1"})
            same_too = await pool.acquire(site.url, RoomApi, headers={"x-trace": "1", **ANN})
            assert again is first
            assert same_too is same
            assert same is not first
            assert (pool.refs(first), pool.refs(same)) == (2, 2)
            assert (pool.size, pool.pending) == (2, 0)
            assert await first.outgoing.double(21) == 42
            assert site.tally.connected == 2
            assert len(site.server.connections) == 2

            await pool.release(again)
            assert pool.refs(first) == 1
            assert state_of(first) is grestws.ClientState.OPEN
            await pool.release(first)
            assert pool.refs(first) == 0
            assert state_of(first) is grestws.ClientState.CLOSED
            assert pool.size == 1
            await site.tally.until(lambda: site.tally.disconnected == 1)
            assert len(site.server.connections) == 1
            await pool.release(same)
            await pool.release(same_too)
        assert state_of(same) is grestws.ClientState.CLOSED
        assert (pool.size, pool.pending) == (0, 0)
        await site.all_closed()
        assert site.tally.connected == 2
        assert site.tally.codes == [1000, 1000]

    async def test_headers_query_url_or_schema_make_another_client(self, start_site: StartSite) -> None:
        site, other = await start_site(), await start_site()
        async with ClientPool() as pool:
            ann = await pool.acquire(site.url, RoomApi, headers=ANN)
            bob = await pool.acquire(site.url, RoomApi, headers=BOB)
            elsewhere = await pool.acquire(other.url, RoomApi, headers=ANN)
            by_query = await pool.acquire(site.url, RoomByQuery, query=Seat("a"), headers=ANN)
            other_query = await pool.acquire(site.url, RoomByQuery, query=Seat("b"), headers=ANN)
            same_query = await pool.acquire(site.url, RoomByQuery, query=Seat("a"), headers=ANN)
            clients = [ann, bob, elsewhere, by_query, other_query]
            assert len({id(client) for client in clients}) == len(clients)
            assert same_query is by_query
            assert pool.size == 5
            assert [pool.refs(client) for client in clients] == [1, 1, 1, 2, 1]

            assert (site.tally.connected, other.tally.connected) == (4, 1)
            assert identities(site) == ["ann", "ann", "ann", "bob"]
            assert identities(other) == ["ann"]
            rooms = sorted(conn.query.get("room", "") for conn in site.server.connections)
            assert rooms == ["", "", "a", "b"]
            for client in [*clients, same_query]:
                await pool.release(client)
            assert all(state_of(client) is grestws.ClientState.CLOSED for client in clients)
            assert pool.size == 0
        await site.all_closed()
        await other.all_closed()

    async def test_header_names_differing_in_case_are_different_headers(self, site: Site) -> None:
        async with ClientPool() as pool:
            ann = await pool.acquire(site.url, RoomApi, headers=ANN)
            try:
                with pytest.raises(grestws.NotAuthorizedError):
                    # A client of its own with these headers is refused (shown below); the
                    # pool hands out ann's authenticated client instead.
                    await pool.acquire(site.url, RoomApi, headers={"Authorization": ANN["authorization"]})
            finally:
                await pool.release(ann)
        with pytest.raises(grestws.NotAuthorizedError):
            await grestws.connect(site.url, RoomApi, headers={"Authorization": ANN["authorization"]})
        await site.all_closed()


class TestConnect:
    async def test_concurrent_acquires_share_one_connect(self, site: Site) -> None:
        site.gate.shut()
        async with ClientPool() as pool:
            acquires = [asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN)) for _ in range(3)]
            await asyncio.wait_for(site.gate.reached.wait(), WAIT)
            assert (pool.size, pool.pending) == (0, 1)
            assert not any(task.done() for task in acquires)
            assert site.tally.connected == 0
            site.gate.open.set()
            first, *others = await asyncio.wait_for(asyncio.gather(*acquires), WAIT)
            assert all(client is first for client in others)
            assert state_of(first) is grestws.ClientState.OPEN
            assert (pool.size, pool.pending) == (1, 0)
            assert pool.refs(first) == 3
            assert site.gate.tokens == ["secret-ann"]
            assert site.tally.connected == 1
            assert len(site.server.connections) == 1
            for client in [first, *others]:
                await pool.release(client)
            assert state_of(first) is grestws.ClientState.CLOSED
        await site.all_closed()

    async def test_a_refused_connect_fails_every_waiter_and_leaves_nothing(self, site: Site) -> None:
        site.gate.shut()
        async with ClientPool() as pool:
            acquires = [
                asyncio.create_task(pool.acquire(site.url, RoomApi, headers=NOBODY)) for _ in range(3)
            ]
            await asyncio.wait_for(site.gate.reached.wait(), WAIT)
            assert (pool.size, pool.pending) == (0, 1)
            site.gate.open.set()
            results = await asyncio.wait_for(asyncio.gather(*acquires, return_exceptions=True), WAIT)
            assert all(isinstance(result, grestws.NotAuthorizedError) for result in results), results
            assert (pool.size, pool.pending) == (0, 0)
            assert site.gate.tokens == ["nobody"]
            assert site.tally.connected == 0

            # Nothing was kept: the next acquire connects anew (and a good token gets in).
            with pytest.raises(grestws.NotAuthorizedError):
                await asyncio.wait_for(pool.acquire(site.url, RoomApi, headers=NOBODY), WAIT)
            assert site.gate.tokens == ["nobody", "nobody"]
            client = await asyncio.wait_for(pool.acquire(site.url, RoomApi, headers=ANN), WAIT)
            assert pool.size == 1
            await pool.release(client)
        assert site.tally.connected == 1
        await site.all_closed()

    async def test_cancelling_an_acquire_releases_its_ref(self, site: Site) -> None:
        site.gate.shut()
        async with ClientPool() as pool:
            cancelled = asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN))
            kept = asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN))
            await asyncio.wait_for(site.gate.reached.wait(), WAIT)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert (pool.size, pool.pending) == (0, 1)  # the connect goes on for the other
            site.gate.open.set()
            client = await asyncio.wait_for(kept, WAIT)
            assert pool.refs(client) == 1
            assert site.tally.connected == 1
            await pool.release(client)
            assert state_of(client) is grestws.ClientState.CLOSED
            assert pool.size == 0
        await site.all_closed()

    async def test_cancelling_every_acquire_stops_the_connect(self, site: Site) -> None:
        site.gate.shut()
        dialer = RecordingDialer()
        async with ClientPool(dialer=dialer) as pool:
            acquires = [asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN)) for _ in range(2)]
            await asyncio.wait_for(site.gate.reached.wait(), WAIT)
            for task in acquires:
                task.cancel()
            results = await asyncio.gather(*acquires, return_exceptions=True)
            assert all(isinstance(result, asyncio.CancelledError) for result in results)
            assert (pool.size, pool.pending) == (0, 0)
            await dialer.all_closed()  # the cancelled connect closed its socket
            site.gate.open.set()
            # A new acquire connects anew.
            client = await asyncio.wait_for(pool.acquire(site.url, RoomApi, headers=ANN), WAIT)
            assert site.gate.tokens == ["secret-ann", "secret-ann"]
            assert len(dialer.transports) == 2
            await pool.release(client)
        await site.all_closed()
        assert site.tally.connected == 1  # the cancelled connect was never accepted

    async def test_a_connect_cancelled_mid_handshake_is_not_seen_by_the_server_hooks(
        self, site: Site
    ) -> None:
        site.gate.shut()
        dialer = RecordingDialer()
        async with ClientPool(dialer=dialer) as pool:
            acquiring = asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN))
            await asyncio.wait_for(site.gate.reached.wait(), WAIT)
            acquiring.cancel()
            await asyncio.gather(acquiring, return_exceptions=True)
            await dialer.all_closed()
        site.gate.open.set()  # the server admits a client that has gone
        await site.all_closed()
        assert (site.tally.connected, site.tally.disconnected) == (0, 0)
        assert site.tally.unpaired == 0

    async def test_cancelling_an_acquire_as_the_connect_completes_keeps_the_client(self, site: Site) -> None:
        tasks: list[asyncio.Task[RoomClientT]] = []

        async def cancel_first_waiter(info: LinkInfo) -> None:
            # Runs last in the connect, which then completes in the same step: the cancel
            # lands after the connect succeeded and before the waiters resume.
            asyncio.get_running_loop().call_soon(tasks[0].cancel)

        pool = ClientPool()
        tasks.append(
            asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN, setup=cancel_first_waiter))
        )
        tasks.append(asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN)))
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(tasks[0], WAIT)
        client = await asyncio.wait_for(tasks[1], WAIT)
        try:
            assert pool.refs(client) == 1
            assert pool.size == 1
            await pool.release(client)
            assert state_of(client) is grestws.ClientState.CLOSED
        finally:
            await pool.close()
            await client.disconnect()  # the pool lost it: close it here
        await site.all_closed()


class TestRelease:
    async def test_last_release_closes_and_the_next_acquire_connects_anew(self, site: Site) -> None:
        async with ClientPool(idle_timeout=0) as pool:
            client = await pool.acquire(site.url, RoomApi, headers=ANN)
            await pool.release(client)
            assert state_of(client) is grestws.ClientState.CLOSED
            assert client.close_code == 1000
            assert pool.size == 0
            await pool.release(client)  # released twice: ignored
            await site.all_closed()
            fresh = await pool.acquire(site.url, RoomApi, headers=ANN)
            assert fresh is not client
            assert site.tally.connected == 2
            await pool.release(fresh)
        await site.all_closed()

    async def test_idle_timeout_keeps_the_client_for_a_later_acquire(self, site: Site) -> None:
        async with ClientPool(idle_timeout=0.05) as pool:
            client = await pool.acquire(site.url, RoomApi, headers=ANN)
            closed = close_event(client)
            # release() returns without letting the loop run, so the idle timer cannot fire
            # before the next acquire, however slow the machine.
            await pool.release(client)
            assert (pool.size, pool.refs(client)) == (1, 0)
            assert state_of(client) is grestws.ClientState.OPEN
            again = await pool.acquire(site.url, RoomApi, headers=ANN)
            assert again is client
            assert pool.refs(client) == 1
            assert await again.outgoing.double(2) == 4
            assert site.tally.connected == 1

            await pool.release(again)
            await asyncio.wait_for(closed.wait(), WAIT)
            assert state_of(client) is grestws.ClientState.CLOSED
            assert client.close_code == 1000
            assert pool.size == 0
            fresh = await pool.acquire(site.url, RoomApi, headers=ANN)
            assert fresh is not client
            await pool.release(fresh)
        assert site.tally.connected == 2
        await site.all_closed()

    async def test_idle_timeout_none_keeps_the_client_until_close(self, site: Site) -> None:
        async with ClientPool(idle_timeout=None) as pool:
            client = await pool.acquire(site.url, RoomApi, headers=ANN)
            await pool.release(client)
            assert (pool.size, pool.refs(client)) == (1, 0)
            assert state_of(client) is grestws.ClientState.OPEN
            assert len(site.server.connections) == 1
            async with pool.get(site.url, RoomApi, headers=ANN) as again:
                assert again is client
            assert state_of(client) is grestws.ClientState.OPEN
            assert site.tally.connected == 1
        assert state_of(client) is grestws.ClientState.CLOSED
        assert pool.size == 0
        await site.all_closed()

    async def test_get_releases_on_the_way_out(self, site: Site) -> None:
        async with ClientPool() as pool:
            async with pool.get(site.url, RoomApi, headers=ANN) as client:
                assert pool.refs(client) == 1
                assert await client.outgoing.double(5) == 10
            assert state_of(client) is grestws.ClientState.CLOSED
            assert pool.size == 0

            held: list[RoomClientT] = []

            async def fail_inside() -> None:
                async with pool.get(site.url, RoomApi, headers=ANN) as failing:
                    held.append(failing)
                    raise LookupError("the body failed")

            with pytest.raises(LookupError):
                await fail_inside()
            assert state_of(held[0]) is grestws.ClientState.CLOSED
            assert pool.size == 0

            kept = await pool.get(site.url, RoomApi, headers=ANN)  # acquires only
            assert pool.refs(kept) == 1
            assert state_of(kept) is grestws.ClientState.OPEN
            await pool.release(kept)
        assert site.tally.connected == 3
        await site.all_closed()


class TestClosedByItself:
    async def test_a_client_the_server_closed_leaves_the_pool(self, site: Site) -> None:
        async with ClientPool(idle_timeout=None) as pool:
            client = await pool.acquire(site.url, RoomApi, headers=ANN)
            closed = close_event(client)
            assert await site.server.close_identity("ann") == 1
            await asyncio.wait_for(closed.wait(), WAIT)
            assert client.close_code == 1008
            assert state_of(client) is grestws.ClientState.CLOSED
            assert (pool.size, pool.refs(client)) == (0, 0)

            fresh = await pool.acquire(site.url, RoomApi, headers=ANN)
            assert fresh is not client
            assert state_of(fresh) is grestws.ClientState.OPEN
            assert pool.refs(fresh) == 1
            await pool.release(client)  # the old one is no longer the pool's: ignored
            assert pool.refs(fresh) == 1
            await pool.release(fresh)
        assert site.tally.connected == 2
        await site.all_closed()
        assert site.tally.codes == [1008, 1000]


class TestClose:
    async def test_graceful_close_waits_for_a_call_in_flight(self, site: Site) -> None:
        pool = ClientPool()
        client = await pool.acquire(site.url, RoomApi, headers=ANN)
        call = asyncio.create_task(client.outgoing.block())
        await asyncio.wait_for(site.hub.started.wait(), WAIT)
        closing = asyncio.create_task(pool.close(graceful=True, timeout=WAIT))
        await until(lambda: state_of(client) is grestws.ClientState.CLOSING)
        assert not call.done()
        assert not closing.done()
        with pytest.raises(grestws.InvalidStateError):
            await pool.acquire(site.url, RoomApi, headers=ANN)
        site.hub.release.set()
        await asyncio.wait_for(call, WAIT)  # answered, not failed
        await asyncio.wait_for(closing, WAIT)
        assert state_of(client) is grestws.ClientState.CLOSED
        assert client.close_code == 1000
        assert await next_item(site.hub.finished) == "done"
        assert pool.size == 0
        await site.all_closed()

    async def test_hard_close_fails_a_call_in_flight_at_once(self, site: Site) -> None:
        pool = ClientPool()
        client = await pool.acquire(site.url, RoomApi, headers=ANN)
        call = asyncio.create_task(client.outgoing.block())
        await asyncio.wait_for(site.hub.started.wait(), WAIT)
        await asyncio.wait_for(pool.close(graceful=False), WAIT)
        assert state_of(client) is grestws.ClientState.CLOSED
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(call, WAIT)
        assert pool.size == 0
        site.hub.release.set()  # the server's handler outlives its client
        await site.all_closed()

    async def test_acquire_after_close_raises(self, site: Site) -> None:
        pool = ClientPool()
        client = await pool.acquire(site.url, RoomApi, headers=ANN)
        await pool.close()
        await pool.close()  # idempotent
        assert state_of(client) is grestws.ClientState.CLOSED
        with pytest.raises(grestws.InvalidStateError):
            await pool.acquire(site.url, RoomApi, headers=ANN)
        with pytest.raises(RuntimeError):
            async with pool.get(site.url, RoomApi, headers=BOB):
                pass
        await pool.release(client)  # after close: ignored
        assert (pool.size, pool.pending) == (0, 0)
        assert site.tally.connected == 1
        await site.all_closed()

    async def test_close_during_a_connect_fails_its_waiters(self, site: Site) -> None:
        site.gate.shut()
        dialer = RecordingDialer()
        pool = ClientPool(dialer=dialer)
        acquiring = asyncio.create_task(pool.acquire(site.url, RoomApi, headers=ANN))
        await asyncio.wait_for(site.gate.reached.wait(), WAIT)
        await asyncio.wait_for(pool.close(), WAIT)
        assert (pool.size, pool.pending) == (0, 0)
        (outcome,) = await asyncio.wait_for(asyncio.gather(acquiring, return_exceptions=True), WAIT)
        await dialer.all_closed()
        site.gate.open.set()
        await site.all_closed()
        assert site.tally.connected == 0
        assert isinstance(outcome, grestws.InvalidStateError), repr(outcome)
