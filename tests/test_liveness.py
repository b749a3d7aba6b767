"""Liveness: a busy or answering peer stays, a silent one is dropped on either side.

:class:`TestLiveness` drives :class:`~grestws.liveness.Liveness` by hand: its timers are
kept by :class:`Timers`, and "time passes" by moving ``last_seen`` back (Liveness reads
``time.monotonic()``; with intervals of a minute the test's own microseconds never
count). :class:`TestHalfOpen` runs grestws.serve and a Client over real sockets, with a
:class:`~tests.proxy.TcpProxy` between them that turns into a black hole: both TCP
connections stay open, every byte is lost, and only each side's own liveness watch can
tell that the other is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVarTuple

import pytest

import grestws
from grestws.client import ClientState
from grestws.liveness import Liveness
from grestws.reconnect import Drop, LinkInfo, Reconnect
from grestws.server import TransportName
from grestws.transports.picows import PicowsDialer
from tests.proxy import TcpProxy
from tests.support import WAIT, Hub, Question, RoomApi, RoomClientHandler, next_item, raw_socket, room_app

Ts = TypeVarTuple("Ts")

INTERVAL = 0.2
TIMEOUT = 0.2
BOUND = 10 * (INTERVAL + TIMEOUT)
"""How long detecting a dead peer may take: ``interval + timeout`` is the design, the
rest is room for a loaded machine."""
DEAD = (1006, "keepalive ping timeout")


# -- the watch itself ---------------------------------------------------------------------------


class Timers(asyncio.SelectorEventLoop):
    """An event loop that is never run: it keeps the timers set on it for the test to fire."""

    def __init__(self) -> None:
        super().__init__()
        self.handles: dict[asyncio.TimerHandle, Callable[[], object]] = {}

    def call_later(
        self,
        delay: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(delay, callback, args, self, context)
        self.handles[handle] = lambda: callback(*args)
        return handle

    @property
    def pending(self) -> list[asyncio.TimerHandle]:
        """The timers set and not cancelled (nor fired)."""
        return [handle for handle in self.handles if not handle.cancelled()]

    def fire(self) -> None:
        """Run the one pending timer, as the loop would once its delay is over."""
        (handle,) = self.pending
        callback = self.handles.pop(handle)
        self.handles.clear()
        callback()

    def next_delay(self) -> float:
        """The delay the one pending timer was set with."""
        (handle,) = self.pending
        return handle.when()


@pytest.fixture
def timers() -> Iterator[Timers]:
    loop = Timers()
    try:
        yield loop
    finally:
        loop.close()


class Watched:
    """A Liveness on :class:`Timers`, counting its pings and deaths."""

    def __init__(self, timers: Timers, interval: float, timeout: float | None) -> None:
        self.timers = timers
        self.pings = 0
        self.deaths = 0
        self.liveness = Liveness(timers, interval, timeout, self._ping, self._dead)

    def _ping(self) -> None:
        self.pings += 1

    def _dead(self) -> None:
        self.deaths += 1

    def frame(self) -> None:
        """A frame arrives now (what the transport does for every frame)."""
        self.liveness.last_seen = time.monotonic()

    def silent_for(self, seconds: float) -> None:
        """The last frame arrived ``seconds`` ago: as if the clock had moved on."""
        self.liveness.last_seen = time.monotonic() - seconds


class TestLiveness:
    def test_a_busy_connection_is_never_pinged(self, timers: Timers) -> None:
        watched = Watched(timers, 60.0, 10.0)
        for _ in range(5):
            watched.frame()
            watched.timers.fire()
            assert 59.0 < watched.timers.next_delay() <= 60.0  # a full interval after that frame
        assert (watched.pings, watched.deaths) == (0, 0)

    def test_any_frame_after_a_ping_keeps_the_peer_without_a_pong(self, timers: Timers) -> None:
        watched = Watched(timers, 60.0, 10.0)
        for count in range(1, 4):
            watched.silent_for(61.0)
            watched.timers.fire()
            assert watched.pings == count
            assert watched.timers.next_delay() == 10.0
            watched.frame()  # an application frame, not the pong
            watched.timers.fire()
            assert watched.deaths == 0
            assert 59.0 < watched.timers.next_delay() <= 60.0
        assert watched.pings == 3

    def test_a_silent_peer_is_dead_interval_plus_timeout_after_its_last_frame(self, timers: Timers) -> None:
        watched = Watched(timers, 60.0, 10.0)
        delays = [watched.timers.next_delay()]
        watched.silent_for(61.0)
        watched.timers.fire()
        delays.append(watched.timers.next_delay())
        watched.timers.fire()
        assert (watched.pings, watched.deaths) == (1, 1)
        assert sum(delays) == 70.0
        assert watched.timers.pending == []  # no watch left after the death

    async def test_a_peer_gone_right_after_a_pong_is_released_interval_plus_timeout_after_it(
        self,
    ) -> None:
        """With a timeout longer than the interval: the peer answers the first ping at once
        (its last frame), then never again. Real timers, which only ever fire late."""
        interval, timeout = 0.05, 0.5
        loop = asyncio.get_running_loop()
        dead: asyncio.Future[float] = loop.create_future()
        pings = 0

        def ping() -> None:
            nonlocal pings
            pings += 1
            if pings == 1:
                liveness.last_seen = time.monotonic()  # the answer, at once

        liveness = Liveness(loop, interval, timeout, ping, lambda: dead.set_result(time.monotonic()))
        try:
            async with asyncio.timeout(WAIT):
                died = await dead
        finally:
            liveness.stop()
        took = died - liveness.last_seen
        assert took < interval + timeout + 0.2, f"released {took:.2f} s after its last frame"

    def test_without_a_timeout_a_silent_peer_is_pinged_every_interval(self, timers: Timers) -> None:
        watched = Watched(timers, 60.0, None)
        for count in range(1, 4):
            watched.silent_for(61.0)
            watched.timers.fire()
            assert watched.pings == count
            assert watched.timers.next_delay() == 60.0
        assert watched.deaths == 0

    def test_stop_ends_the_watch(self, timers: Timers) -> None:
        watched = Watched(timers, 60.0, 10.0)
        watched.liveness.stop()
        watched.liveness.stop()
        assert watched.timers.pending == []


# -- half-open connections over real sockets ------------------------------------------------------


Event = tuple[float, int | None, str]
"""``(loop time, close code, close reason)`` of a connection seen closing."""


@dataclass
class Rig:
    """A RoomApi server behind a proxy, and the connections the server saw close."""

    hub: Hub
    server: grestws.Server
    proxy: TcpProxy
    disconnects: asyncio.Queue[Event]

    @property
    def url(self) -> str:
        """The proxy's URL."""
        return f"ws://127.0.0.1:{self.proxy.port}"


@contextlib.asynccontextmanager
async def rig(
    *, ping_interval: float | None, ping_timeout: float = TIMEOUT, transport: TransportName = "websockets"
) -> AsyncGenerator[Rig]:
    hub = Hub()
    app = room_app(hub)
    server_options: dict[str, Any] = {"ping_interval": ping_interval, "ping_timeout": ping_timeout}
    async with (
        grestws.serve(app, "127.0.0.1", 0, transport=transport, **server_options) as server,
        TcpProxy(server.port) as proxy,
    ):
        seen = Rig(hub, server, proxy, asyncio.Queue())
        loop = asyncio.get_running_loop()
        app.on_disconnect(lambda conn, code, reason: seen.disconnects.put_nowait((loop.time(), code, reason)))
        yield seen


async def detected(
    events: asyncio.Queue[Event], since: float, what: str, bound: float = BOUND
) -> tuple[float, tuple[int | None, str]]:
    """How long after ``since`` the next of ``events`` came (within ``bound``, or the test
    fails), and its close code and reason."""
    try:
        async with asyncio.timeout(2 * bound):
            at, code, reason = await events.get()
    except TimeoutError:
        pytest.fail(f"{what}: not detected within {2 * bound:g} s")
    took = at - since
    assert took < bound, f"{what}: detected after {took:.2f} s"
    return took, (code, reason)


def pinging(transport: TransportName, interval: float | None, timeout: float = TIMEOUT) -> dict[str, Any]:
    """A client's options to ping every ``interval`` s (None: never) over ``transport``."""
    if transport == "picows":
        return {"dialer": PicowsDialer(ping_interval=interval, ping_timeout=timeout)}
    return {"ping_interval": interval, "ping_timeout": timeout}


@pytest.mark.parametrize("transport", ["websockets", "picows"])
class TestHalfOpen:
    async def test_the_server_drops_a_black_holed_client(self, transport: TransportName) -> None:
        async with rig(ping_interval=INTERVAL, transport=transport) as seen:
            client = grestws.Client(seen.url, RoomApi, reconnect=False, **pinging(transport, None))
            await client.connect()
            try:
                assert await asyncio.wait_for(client.outgoing.double(21), WAIT) == 42
                started = asyncio.get_running_loop().time()
                seen.proxy.black_hole()
                _, closed = await detected(seen.disconnects, started, "the server")
                assert closed == DEAD
                assert seen.server.connections == set()
                assert client.state is ClientState.OPEN  # half-open: it cannot know
                await seen.proxy.close()  # a reset: now it knows, and stops (no reconnect)
            finally:
                await client.close()
            assert client.close_code == 1006

    async def test_both_ends_drop_a_black_holed_link_and_the_client_comes_back(
        self, transport: TransportName
    ) -> None:
        loop = asyncio.get_running_loop()
        drops: asyncio.Queue[Event] = asyncio.Queue()
        reconnecting: list[bool] = []
        setups: asyncio.Queue[LinkInfo] = asyncio.Queue()

        async def setup(info: LinkInfo) -> None:
            setups.put_nowait(info)

        def dropped(drop: Drop) -> None:
            drops.put_nowait((loop.time(), drop.code, drop.reason))
            reconnecting.append(drop.reconnecting)

        async with rig(ping_interval=INTERVAL, transport=transport) as seen:
            client = grestws.Client(
                seen.url,
                RoomApi,
                handlers=RoomClientHandler(),
                **pinging(transport, INTERVAL),
                handshake_timeout=1.0,
                reconnect=Reconnect(initial_delay=0.05, max_delay=0.05),
                setup=setup,
            )
            client.on_drop(dropped)
            await client.connect()
            try:
                assert (await next_item(setups)).reconnect is False
                assert await asyncio.wait_for(client.outgoing.double(21), WAIT) == 42
                started = loop.time()
                seen.proxy.black_hole()
                _, closed = await detected(seen.disconnects, started, "the server")
                assert closed == DEAD
                _, closed = await detected(drops, started, "the client")
                assert closed == DEAD
                assert reconnecting == [True]
                state = client.state
                assert state is ClientState.RECONNECTING
                assert setups.empty()  # attempts into the black hole never open

                seen.proxy.heal()
                info = await next_item(setups)
                assert info.reconnect
                assert await asyncio.wait_for(client.outgoing.ask_client(Question("back")), WAIT) == "BACK"
                assert client.state is ClientState.OPEN
                assert seen.proxy.forwarded == 2
                assert len(seen.hub.connections) == 2
                assert seen.server.connections == {seen.hub.connections[1]}
            finally:
                await client.close()
            assert drops.empty()

    async def test_a_peer_that_sends_frames_but_no_pongs_stays(self, transport: TransportName) -> None:
        """The client reads nothing, so the server's pings go unanswered; its application
        frames, each sent after a ping went out, keep it connected until they stop."""
        interval, timeout = 0.2, 1.0
        loop = asyncio.get_running_loop()
        async with rig(ping_interval=interval, ping_timeout=timeout, transport=transport) as seen:
            async with raw_socket(seen.url + RoomApi.path) as ws:
                ws.transport.pause_reading()
                sent = loop.time()
                try:
                    for _ in range(3):
                        await asyncio.sleep(2 * interval)  # pinged after `interval` of this
                        sent = loop.time()
                        await ws.send("m:RoomApi.poke::")
                        await next_item(seen.hub.pokes)
                    assert seen.disconnects.empty()
                    took, closed = await detected(
                        seen.disconnects, sent, "the server", bound=10 * (interval + timeout)
                    )
                finally:
                    ws.transport.resume_reading()
            assert closed == DEAD
            assert took >= interval + timeout - 0.05  # not before its time: the frames counted
