"""A client that comes back by itself, over real sockets on 127.0.0.1: after a server that
was SIGKILLed (a ``grestws serve`` subprocess) or closed gracefully (1012), with the setup
callbacks run again, fresh tokens, backoff and jitter, failover between URLs, calls made
while it is down or in flight when it dropped, and the closes that are final.

Nothing here waits on the wall clock: the reconnect policy sleeps on a :class:`FakeClock`
that records every pause and returns when the test lets it, and every wait on an event,
a queue or a condition is bounded (:data:`WAIT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import socket
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from typing_extensions import Unpack

import grestws
from grestws.client import ClientOptions, Headers
from grestws.exceptions import ConnectionLostError, UnavailableError
from grestws.reconnect import (
    Backoff,
    CloseCause,
    Drop,
    LinkInfo,
    Reconnect,
    retry_after_close,
    retry_after_error,
)
from grestws.transports import Dialed
from grestws.transports.websockets import WebsocketsDialer
from tests.reconnect_app import KillApi
from tests.support import WAIT, next_item

T = TypeVar("T")
C2S = TypeVar("C2S")
S2C = TypeVar("S2C")

ROOT = Path(__file__).resolve().parents[1]
START_WAIT = 15.0
"""Seconds a ``grestws serve`` subprocess may take to start listening."""

GOING_AWAY = 1001
"""A close the client reconnects after, with a pause first (unlike 1012)."""

OPEN = grestws.ClientState.OPEN
RECONNECTING = grestws.ClientState.RECONNECTING
CLOSED = grestws.ClientState.CLOSED


# -- a contract served in this process ----------------------------------------------------


class EchoServer(Protocol):
    @grestws.request
    async def echo(self, text: str) -> str:
        """Hand ``text`` back (not idempotent: the server notes every call it runs)."""
        ...

    @grestws.request
    async def serial(self) -> int:
        """Which connection of its server answers: 1 for the first, 2 for the next, ..."""
        ...

    @grestws.request
    async def hold(self) -> None:
        """Answer once the test lets it (:attr:`Hub.release`)."""
        ...

    @grestws.request
    async def whoami(self) -> str:
        """The id of the connection's identity ("" without one)."""
        ...

    @grestws.notify
    async def note(self, text: str) -> None:
        """Note ``text``."""
        ...


class EchoClient(Protocol):
    pass


EchoApi = grestws.SocketContract("EchoApi", client_to_server=EchoServer, server_to_client=EchoClient).at(
    "/ws/echo"
)


class Hub:
    """What one server's handlers saw, and the event that lets ``hold`` answer."""

    def __init__(self) -> None:
        self.connections: list[grestws.ServerConnection[EchoClient]] = []
        self.echoed: list[str] = []
        self.holding = asyncio.Event()
        self.release = asyncio.Event()


class EchoHandler(EchoServer):
    def __init__(self, hub: Hub, conn: grestws.ServerConnection[EchoClient]) -> None:
        self.hub = hub
        self.conn = conn
        hub.connections.append(conn)
        self.number = len(hub.connections)

    async def echo(self, text: str) -> str:
        self.hub.echoed.append(text)
        return text

    async def serial(self) -> int:
        return self.number

    async def hold(self) -> None:
        self.hub.holding.set()
        await self.hub.release.wait()

    async def whoami(self) -> str:
        return "" if self.conn.identity is None else self.conn.identity.id

    async def note(self, text: str) -> None:
        self.hub.echoed.append(text)


async def verify(token: str) -> grestws.Identity | None:
    """``secret-<name>`` is the user ``<name>``; any other token is refused."""
    name = token.removeprefix("secret-")
    return grestws.Identity(name) if token.startswith("secret-") and name else None


def echo_app(hub: Hub, *, auth: bool = False) -> grestws.App:
    """An App serving EchoApi to ``hub``'s handlers, with bearer tokens when ``auth``."""
    app = grestws.App(shutdown_timeout=WAIT)
    schema = EchoApi.use(grestws.BearerAuth(verify=verify)) if auth else EchoApi

    def handler(conn: grestws.ServerConnection[EchoClient]) -> EchoHandler:
        return EchoHandler(hub, conn)

    app.add(schema, handler)
    return app


# -- the clock, the dialer and the callbacks a test watches -------------------------------


class FakeClock:
    """The ``sleep`` of a test's Reconnect policy: it records every pause it is asked for
    and returns only when the test calls :meth:`release` (or at once, unless ``gated``)."""

    def __init__(self, *, gated: bool = True) -> None:
        self.delays: list[float] = []
        self._asked: asyncio.Queue[float] = asyncio.Queue()
        self._gated = gated
        self._go = asyncio.Semaphore(0)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        self._asked.put_nowait(delay)
        if self._gated:
            await self._go.acquire()

    async def pause(self) -> float:
        """The next pause the client asks for (waiting for it, at most WAIT s)."""
        delay: float = await next_item(self._asked)
        return delay

    def release(self) -> None:
        """End the pause the client waits in (or the next one it asks for)."""
        self._go.release()

    def policy(
        self,
        *,
        initial_delay: float = 0.1,
        max_delay: float = 1.0,
        max_attempts: int | None = None,
        jitter: Callable[[], float] = lambda: 0.5,
    ) -> Reconnect:
        return Reconnect(
            initial_delay=initial_delay,
            max_delay=max_delay,
            max_attempts=max_attempts,
            sleep=self.sleep,
            random=jitter,
        )


class WatchedDialer:
    """The default dialer, noting before each dial how many pauses the clock had drawn."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._dial = WebsocketsDialer(ping_interval=None)
        self.pauses_before: list[int] = []

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        self.pauses_before.append(len(self._clock.delays))
        return await self._dial(url, headers)


class RefusingDialer:
    """Dials once with the default dialer, then refuses every dial, setting ``refused``
    in the very step that raises (before the client can see the error)."""

    def __init__(self) -> None:
        self._dial = WebsocketsDialer(ping_interval=None)
        self.dials = 0
        self.refused = asyncio.Event()

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        self.dials += 1
        if self.dials == 1:
            return await self._dial(url, headers)
        self.refused.set()
        raise grestws.ConnectError(f"{url}: refused")


class Watch:
    """A client's callbacks as queues: each setup's LinkInfo, each Drop, each close."""

    def __init__(self, client: grestws.Client[Any, Any]) -> None:
        self.setups: asyncio.Queue[LinkInfo] = asyncio.Queue()
        self.drops: asyncio.Queue[Drop] = asyncio.Queue()
        self.closes: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
        client.on_setup(self._set_up)
        client.on_drop(self.drops.put_nowait)
        client.on_close(lambda code, reason: self.closes.put_nowait((code, reason)))

    async def _set_up(self, info: LinkInfo) -> None:
        self.setups.put_nowait(info)

    async def setup(self) -> LinkInfo:
        info: LinkInfo = await next_item(self.setups)
        return info

    async def drop(self) -> Drop:
        drop: Drop = await next_item(self.drops)
        return drop

    async def close(self) -> tuple[int | None, str]:
        closed: tuple[int | None, str] = await next_item(self.closes)
        return closed


class Tokens:
    """A token provider for ``headers=``: the token it gives now, and how often it gave one."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    def headers(self) -> dict[str, str]:
        self.calls += 1
        return {"authorization": f"Bearer {self.token}"}

    async def headers_async(self) -> dict[str, str]:
        await asyncio.sleep(0)
        return self.headers()

    def provider(self, asynchronous: bool) -> Headers:
        return self.headers_async if asynchronous else self.headers


# -- servers, clients and tasks that end with the test -------------------------------------


def free_port() -> int:
    """A port nothing listens on now (the OS's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def full_url(server: grestws.Server, path: str = EchoApi.path) -> str:
    return server.url + path


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most WAIT s) until ``condition()`` holds, for state no event announces."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 - no event announces it: poll, bounded
            await asyncio.sleep(0.005)


class ServeProcess:
    """``grestws serve tests.reconnect_app:app`` in a subprocess, on a given port."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, port: int, generation: int) -> ServeProcess:
        env = {name: value for name, value in os.environ.items() if name != "GRESTWS_BROKER"}
        env["RECONNECT_GENERATION"] = str(generation)
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "grestws", "serve", "tests.reconnect_app:app"),
            *("--host", "127.0.0.1", "--port", str(port)),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def read_until(self, text: str, wait: float = WAIT) -> None:
        """Read log lines until one contains ``text``: fail at the end of the output or
        after ``wait`` seconds."""
        stderr = self.process.stderr
        assert stderr is not None
        async with asyncio.timeout(wait):
            while line := await stderr.readline():
                self.lines.append(line.decode().rstrip())
                if text in self.lines[-1]:
                    return
        raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.lines))

    async def kill(self) -> None:
        """SIGKILL the process (if it still runs) and reap it."""
        if self.process.returncode is None:
            self.process.kill()
        assert self.process.stderr is not None
        async with asyncio.timeout(WAIT):
            await self.process.stderr.read()
            await self.process.wait()


class Harness:
    """What a test starts, stopped when it ends whatever happened: its tasks first, then
    its clients (while the servers still run: a client never sees its server go at the
    end), then its servers and processes; in each group the last started first."""

    def __init__(
        self,
        tasks: contextlib.AsyncExitStack,
        clients: contextlib.AsyncExitStack,
        servers: contextlib.AsyncExitStack,
    ) -> None:
        self._tasks = tasks
        self._clients = clients
        self._servers = servers

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` in a task, cancelled (and its outcome collected) at the end."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.push_async_callback(_cancel, task)
        return task

    async def serve(self, app: grestws.App, port: int = 0, **options: Any) -> grestws.Server:
        """Serve ``app`` with grestws.serve on 127.0.0.1 (``port`` 0: a free one)."""
        server = await grestws.serve(app, "127.0.0.1", port, ping_interval=None, **options)
        self._servers.push_async_callback(server.close, 1.0)
        return server

    async def serve_process(self, port: int, generation: int) -> ServeProcess:
        """Start ``grestws serve`` on ``port`` and wait until it listens."""
        served = await ServeProcess.start(port, generation)
        self._servers.push_async_callback(served.kill)
        await served.read_until("listening on", START_WAIT)
        return served

    def client(
        self,
        url: str | Sequence[str],
        schema: grestws.SocketSchema[C2S, S2C, Any],
        **options: Unpack[ClientOptions],
    ) -> tuple[grestws.Client[C2S, S2C], Watch]:
        """A client, not connected yet, and a watch on its callbacks; closed at the end."""
        if options.get("dialer") is None:  # a dialer has its own (these tests' have none)
            options.setdefault("ping_interval", None)
        client = grestws.Client(url, schema, **options)
        self._clients.push_async_callback(_close, client)
        return client, Watch(client)

    async def connect(
        self,
        url: str | Sequence[str],
        schema: grestws.SocketSchema[C2S, S2C, Any],
        **options: Unpack[ClientOptions],
    ) -> tuple[grestws.Client[C2S, S2C], Watch]:
        """A connected client and a watch on its callbacks (the first setup taken)."""
        client, watch = self.client(url, schema, **options)
        async with asyncio.timeout(WAIT):
            await client.connect()
        first = await watch.setup()
        assert (first.reconnect, first.attempts) == (False, 1)
        return client, watch


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    async with asyncio.timeout(WAIT):
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # collected: never "Task exception was never retrieved"


async def _close(client: grestws.Client[Any, Any]) -> None:
    async with asyncio.timeout(WAIT):
        await client.close()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with (
        contextlib.AsyncExitStack() as servers,
        contextlib.AsyncExitStack() as clients,
        contextlib.AsyncExitStack() as tasks,
    ):
        yield Harness(tasks, clients, servers)


async def outcome(task: asyncio.Task[T]) -> T:
    """The result of ``task``, waiting at most WAIT s."""
    async with asyncio.timeout(WAIT):
        return await task


# -- the policy itself ---------------------------------------------------------------------


class TestBackoff:
    def test_caps_double_up_to_max_delay_and_random_drives_the_jitter(self) -> None:
        draws = iter([0.0, 0.5, 0.999, 0.25, 1.0 - 1e-12, 0.75])
        policy = Reconnect(initial_delay=0.5, max_delay=3.0, random=lambda: next(draws))
        backoff = Backoff(policy)
        caps: list[float] = []
        delays: list[float] = []
        for _ in range(6):
            caps.append(backoff.cap())
            delays.append(backoff.next_delay())
        assert caps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
        assert delays == pytest.approx([0.0, 0.5, 1.998, 0.75, 3.0, 2.25])
        assert all(0 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
        assert backoff.attempt == 6
        backoff.reset()
        assert (backoff.attempt, backoff.cap()) == (0, 0.5)

    @pytest.mark.parametrize(
        ("initial", "maximum", "multiplier"),
        [(0.5, 30.0, 2.0), (0.0, 1.0, 2.0), (1.0, 1.0, 1.0), (0.01, 5.0, 3.0), (2.0, 1e9, 10.0)],
    )
    def test_every_delay_is_within_its_cap(self, initial: float, maximum: float, multiplier: float) -> None:
        draws = random.Random(f"{initial}-{maximum}-{multiplier}")
        policy = Reconnect(
            initial_delay=initial, max_delay=maximum, multiplier=multiplier, random=draws.random
        )
        backoff = Backoff(policy)
        for attempt in range(200):
            cap = backoff.cap()
            assert cap == min(maximum, initial * multiplier**attempt)
            assert 0 <= backoff.next_delay() <= cap <= maximum

    def test_a_huge_multiplier_still_caps(self) -> None:
        backoff = Backoff(Reconnect(initial_delay=1.0, max_delay=60.0, multiplier=1e5))
        for _ in range(70):
            assert 0 <= backoff.next_delay() <= 60.0

    @pytest.mark.parametrize(
        "options",
        [
            {"initial_delay": -0.1},
            {"initial_delay": 2.0, "max_delay": 1.0},
            {"max_delay": -1.0},
            {"initial_delay": float("nan")},
            {"multiplier": 0.99},
            {"max_attempts": 0},
            {"max_attempts": -3},
            {"restart_spread": -1.0},
            {"restart_spread": float("inf")},
            {"restart_spread": float("nan")},
        ],
    )
    def test_reconnect_validates_its_arguments(self, options: dict[str, Any]) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            Reconnect(**options)

    def test_edge_values_are_accepted(self) -> None:
        policy = Reconnect(initial_delay=0.0, max_delay=0.0, multiplier=1.0, max_attempts=1)
        assert Backoff(policy).next_delay() == 0.0

    def test_only_a_restart_spreads_its_first_attempt(self) -> None:
        policy = Reconnect(restart_spread=2.0, random=lambda: 0.25)
        assert policy.first_pause(1012) == 0.5
        assert policy.first_pause(1006) is None  # the backoff's pause
        assert policy.first_pause(None) is None
        assert Reconnect(random=lambda: 0.25).first_pause(1012) == 0.0  # at once

    @pytest.mark.parametrize(
        ("code", "again"),
        [
            *[(code, True) for code in (None, 1001, 1006, 1011, 1012, 1013)],
            *[(code, False) for code in (1000, 1003, 1007, 1008, 4000, 4001)],
        ],
    )
    def test_which_closes_are_worth_a_reconnect(self, code: int | None, again: bool) -> None:
        assert retry_after_close(code) is again

    def test_which_errors_are_worth_another_attempt(self) -> None:
        assert retry_after_error(grestws.ConnectError("refused"))
        assert retry_after_error(grestws.HandshakeTimeoutError("slow"))
        assert retry_after_error(grestws.ServerError("oops"))
        assert not retry_after_error(grestws.NotAuthorizedError("who?"))
        assert not retry_after_error(grestws.ForbiddenError("no"))
        assert not retry_after_error(grestws.ValidationError("bad query", data=[]))

    async def test_a_client_follows_the_policy_until_max_attempts(self, harness: Harness) -> None:
        clock = FakeClock(gated=False)
        draws = iter([0.0, 0.5, 1.0 - 1e-9, 0.25])
        policy = clock.policy(initial_delay=0.1, max_delay=0.3, max_attempts=5, jitter=lambda: next(draws))
        server = await harness.serve(echo_app(Hub()))
        dialer = WatchedDialer(clock)
        client, watch = await harness.connect(server.url, EchoApi, reconnect=policy, dialer=dialer)
        await server.close()  # 1012, and nothing listens on the port any more
        drop = await watch.drop()
        assert (drop.code, drop.reconnecting, drop.restart) == (1012, True, True)
        assert await watch.close() == (1012, "Server restarting")
        assert client.state is CLOSED
        assert client.close_cause is CloseCause.RETRIES_EXHAUSTED
        assert isinstance(client.close_error, grestws.ConnectError)
        # The connect, then five attempts: the first at once (1012), each other after a pause
        # whose cap doubles from 0.1 to at most 0.3, scaled by the random draw.
        assert dialer.pauses_before == [0, 0, 1, 2, 3, 4]
        assert clock.delays == pytest.approx([0.0, 0.1, 0.3, 0.075])
        with pytest.raises(grestws.ConnectionClosedError):
            await outcome(harness.spawn(client.outgoing.serial()))


# -- a server that dies ---------------------------------------------------------------------


class TestKilledServer:
    async def test_the_client_comes_back_after_a_sigkill_and_a_restart(self, harness: Harness) -> None:
        port = free_port()
        first = await harness.serve_process(port, generation=1)
        clock = FakeClock()
        url = f"ws://127.0.0.1:{port}"
        client, watch = await harness.connect(url, KillApi, reconnect=clock.policy())
        assert await outcome(harness.spawn(client.outgoing.generation())) == 1

        await first.kill()
        drop = await watch.drop()
        assert (drop.code, drop.reconnecting, drop.restart) == (1006, True, False)
        assert client.state is RECONNECTING
        await clock.pause()  # 1006 is no restart: a pause before the first attempt
        clock.release()  # attempt 1: nothing listens, refused
        await clock.pause()
        assert client.state is RECONNECTING
        await harness.serve_process(port, generation=2)
        clock.release()  # attempt 2

        info = await watch.setup()
        assert info == LinkInfo(url + KillApi.path, reconnect=True, attempts=2)
        assert await outcome(harness.spawn(client.outgoing.generation())) == 2
        assert client.state is OPEN
        assert len(clock.delays) == 2
        assert watch.drops.empty()

    async def test_requests_in_flight_at_the_kill(self, harness: Harness) -> None:
        port = free_port()
        first = await harness.serve_process(port, generation=1)
        clock = FakeClock()
        client, watch = await harness.connect(f"ws://127.0.0.1:{port}", KillApi, reconnect=clock.policy())
        hang = harness.spawn(client.outgoing.hang())
        await first.read_until("hang started")
        wanted = harness.spawn(client.with_timeout(3 * START_WAIT).generation_at_least(2))
        await first.read_until("generation 1 waits for generation 2")

        await first.kill()
        # Not idempotent: it fails at once, before any reconnect.
        with pytest.raises(ConnectionLostError) as caught:
            await outcome(hang)
        assert isinstance(caught.value, grestws.ConnectionClosedError)
        assert caught.value.code == 1006
        assert (await watch.drop()).code == 1006
        await clock.pause()
        assert client.state is RECONNECTING
        assert not wanted.done()

        # Idempotent: sent again on the next connection, within its own timeout.
        await harness.serve_process(port, generation=2)
        clock.release()
        assert (await watch.setup()).reconnect
        assert await outcome(wanted) == 2


# -- a server that restarts gracefully -----------------------------------------------------


class TestGracefulRestart:
    async def test_the_client_comes_back_at_once_to_the_next_server(self, harness: Harness) -> None:
        old_hub, new_hub = Hub(), Hub()
        old = await harness.serve(echo_app(old_hub), reuse_port=True)
        clock = FakeClock()
        client, watch = await harness.connect(old.url, EchoApi, reconnect=clock.policy())
        new = await harness.serve(echo_app(new_hub), old.port, reuse_port=True)  # a rolling restart
        assert len(old_hub.connections) == 1

        await old.close()
        drop = await watch.drop()
        assert (drop.code, drop.reason, drop.reconnecting, drop.restart) == (
            1012,
            "Server restarting",
            True,
            True,
        )
        info = await watch.setup()
        assert info == LinkInfo(full_url(new), reconnect=True, attempts=1)
        assert clock.delays == []  # no pause at all
        assert await outcome(harness.spawn(client.outgoing.serial())) == 1
        assert len(new_hub.connections) == 1

    async def test_with_a_restart_spread_the_first_attempt_waits_a_random_part_of_it(
        self, harness: Harness
    ) -> None:
        old_hub, new_hub = Hub(), Hub()
        old = await harness.serve(echo_app(old_hub), reuse_port=True)
        clock = FakeClock()
        policy = dataclasses.replace(clock.policy(jitter=lambda: 0.25), restart_spread=2.0)
        dialer = WatchedDialer(clock)
        client, watch = await harness.connect(old.url, EchoApi, reconnect=policy, dialer=dialer)
        new = await harness.serve(echo_app(new_hub), old.port, reuse_port=True)  # a rolling restart

        await old.close()
        assert (await watch.drop()).restart
        assert await clock.pause() == 0.5  # a quarter of the spread, before any attempt
        assert dialer.pauses_before == [0]  # the first connect only
        clock.release()
        info = await watch.setup()
        assert info == LinkInfo(full_url(new), reconnect=True, attempts=1)
        assert dialer.pauses_before == [0, 1]
        assert clock.delays == [0.5]
        assert await outcome(harness.spawn(client.outgoing.serial())) == 1

    async def test_restarted_on_the_same_port(self, harness: Harness) -> None:
        server = await harness.serve(echo_app(Hub()))
        clock = FakeClock()
        dialer = WatchedDialer(clock)
        client, watch = await harness.connect(server.url, EchoApi, reconnect=clock.policy(), dialer=dialer)

        await server.close()
        assert (await watch.drop()).code == 1012
        await clock.pause()  # drawn only once the first attempt, made at once, failed
        assert dialer.pauses_before == [0, 0]
        hub = Hub()
        again = await harness.serve(echo_app(hub), server.port)
        clock.release()

        info = await watch.setup()
        assert info == LinkInfo(full_url(again), reconnect=True, attempts=2)
        assert dialer.pauses_before == [0, 0, 1]
        assert await outcome(harness.spawn(client.outgoing.echo("back"))) == "back"
        assert hub.echoed == ["back"]

    async def test_a_request_refused_while_draining_goes_to_the_next_connection(
        self, harness: Harness
    ) -> None:
        old_hub, new_hub = Hub(), Hub()
        old = await harness.serve(echo_app(old_hub), reuse_port=True)
        clock = FakeClock()
        client, watch = await harness.connect(old.url, EchoApi, reconnect=clock.policy())
        impatient, _ = await harness.connect(old.url, EchoApi, reconnect=False, wait_for_connection=False)
        await harness.serve(echo_app(new_hub), old.port, reuse_port=True)  # a rolling restart
        held = harness.spawn(client.outgoing.hold())
        async with asyncio.timeout(WAIT):
            await old_hub.holding.wait()

        closing = harness.spawn(old.close(timeout=WAIT))  # the drain waits for ``hold``
        await until(lambda: all(conn.draining for conn in old_hub.connections))
        with pytest.raises(UnavailableError):  # what the server answers while it drains
            await outcome(harness.spawn(impatient.outgoing.echo("refused")))
        echoed = harness.spawn(client.outgoing.echo("once"))  # answered UNAVAILABLE: not run
        # A fire-and-forget call still runs while draining; once it has, so has the request
        # sent before it (calls are served in order): it was refused, and waits.
        await outcome(harness.spawn(client.outgoing.note("barrier")))
        await until(lambda: old_hub.echoed == ["barrier"])
        assert not echoed.done()

        old_hub.release.set()
        await outcome(held)
        await outcome(closing)
        assert (await watch.drop()).code == 1012
        assert (await watch.setup()).reconnect
        assert await outcome(echoed) == "once"
        assert (old_hub.echoed, new_hub.echoed) == (["barrier"], ["once"])
        # The one pause drawn: before sending the refused request again, cut short when
        # the connection went; the reconnect after 1012 took none.
        assert clock.delays == [0.05]


# -- tokens --------------------------------------------------------------------------------


class TestTokens:
    @pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
    async def test_the_provider_is_asked_again_for_every_connection(
        self, harness: Harness, asynchronous: bool
    ) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub, auth=True))
        tokens = Tokens("secret-alice")
        clock = FakeClock()
        client, _ = await harness.connect(
            server.url, EchoApi, headers=tokens.provider(asynchronous), reconnect=clock.policy()
        )
        assert await outcome(harness.spawn(client.outgoing.whoami())) == "alice"
        tokens.token = "secret-bob"  # refreshed
        await client.force_reconnect()
        assert await outcome(harness.spawn(client.outgoing.whoami())) == "bob"
        assert tokens.calls == 2

    @pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
    async def test_a_bad_token_at_reconnect_is_final(self, harness: Harness, asynchronous: bool) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub, auth=True))
        tokens = Tokens("secret-alice")
        clock = FakeClock()
        client, watch = await harness.connect(
            server.url,
            EchoApi,
            headers=tokens.provider(asynchronous),
            reconnect=clock.policy(max_attempts=50),
        )
        await hub.connections[0].close(GOING_AWAY, "Going away")
        assert (await watch.drop()).reconnecting
        await clock.pause()
        waiting = harness.spawn(client.outgoing.serial())
        tokens.token = "expired"
        clock.release()

        assert await watch.close() == (GOING_AWAY, "Going away")
        assert client.state is CLOSED
        assert client.close_cause is CloseCause.UNRECOVERABLE
        assert isinstance(client.close_error, grestws.NotAuthorizedError)
        with pytest.raises(grestws.ConnectionClosedError):
            await outcome(waiting)
        assert tokens.calls == 2
        assert clock.delays == [0.05]  # no attempt after the refusal
        assert len(hub.connections) == 1


# -- forcing a reconnect -------------------------------------------------------------------


class TestForceReconnect:
    async def test_while_open(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        clock = FakeClock()
        client, watch = await harness.connect(server.url, EchoApi, reconnect=clock.policy())
        await client.force_reconnect()
        drop = await watch.drop()
        assert (drop.code, drop.reason, drop.reconnecting) == (1000, "Reconnecting", True)
        assert await watch.setup() == LinkInfo(full_url(server), reconnect=True, attempts=1)
        assert await outcome(harness.spawn(client.outgoing.serial())) == 2
        assert clock.delays == []
        assert client.state is OPEN

    async def test_while_waiting_in_a_pause(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        clock = FakeClock()
        dialer = WatchedDialer(clock)
        client, watch = await harness.connect(server.url, EchoApi, reconnect=clock.policy(), dialer=dialer)
        await hub.connections[0].close(GOING_AWAY, "Going away")
        assert (await watch.drop()).code == GOING_AWAY
        await clock.pause()
        await client.force_reconnect()  # the pause is never released: skipped
        assert await watch.setup() == LinkInfo(full_url(server), reconnect=True, attempts=1)
        assert await outcome(harness.spawn(client.outgoing.serial())) == 2
        assert dialer.pauses_before == [0, 1]
        assert client.state is OPEN

    async def test_a_forced_attempt_that_fails_is_followed_by_a_pause(self, harness: Harness) -> None:
        server = await harness.serve(echo_app(Hub()))
        clock = FakeClock()
        dialer = WatchedDialer(clock)
        client, watch = await harness.connect(server.url, EchoApi, reconnect=clock.policy(), dialer=dialer)
        await server.close()  # attempt 1 at once, refused; then a pause
        assert (await watch.drop()).code == 1012
        await clock.pause()
        await client.force_reconnect()  # attempt 2 now, refused again
        await clock.pause()  # the policy's next pause: attempt 3 waits for it
        assert dialer.pauses_before == [0, 0, 1]

    async def test_a_force_during_an_attempt_skips_the_next_pause(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub, auth=True))
        clock = FakeClock()
        asked = asyncio.Event()
        answer = asyncio.Event()
        calls = 0

        async def tokens() -> dict[str, str]:
            nonlocal calls
            calls += 1
            if calls == 2:  # the first attempt after the drop: held, then refused
                asked.set()
                await answer.wait()
                raise grestws.ServerError("token service down")
            return {"authorization": "Bearer secret-alice"}

        client, watch = await harness.connect(server.url, EchoApi, headers=tokens, reconnect=clock.policy())
        await hub.connections[0].close(GOING_AWAY, "Going away")
        await clock.pause()
        clock.release()
        async with asyncio.timeout(WAIT):
            await asked.wait()
        await client.force_reconnect()  # during the attempt
        answer.set()  # the attempt fails; the force asks for the next one at once
        setup = harness.spawn(watch.setup())
        pause = harness.spawn(clock.pause())
        async with asyncio.timeout(WAIT):
            await asyncio.wait({setup, pause}, return_when=asyncio.FIRST_COMPLETED)
        assert not pause.done(), "the client waits in a pause"
        assert await outcome(setup) == LinkInfo(full_url(server), reconnect=True, attempts=2)

    async def test_misuse(self, harness: Harness) -> None:
        server = await harness.serve(echo_app(Hub()))
        client, _ = harness.client(server.url, EchoApi)
        with pytest.raises(grestws.InvalidStateError):
            await client.force_reconnect()
        async with asyncio.timeout(WAIT):
            await client.connect()
            await client.close()
        with pytest.raises(grestws.InvalidStateError):
            await client.force_reconnect()


# -- failover ------------------------------------------------------------------------------


class TestFailover:
    async def test_the_client_continues_on_the_next_url(self, harness: Harness) -> None:
        hub_a, hub_b = Hub(), Hub()
        server_a = await harness.serve(echo_app(hub_a))
        server_b = await harness.serve(echo_app(hub_b))
        clock = FakeClock()
        client, watch = await harness.connect([server_a.url, server_b.url], EchoApi, reconnect=clock.policy())
        assert client.url == full_url(server_a)
        assert await outcome(harness.spawn(client.outgoing.echo("on a"))) == "on a"

        await server_a.close()
        assert (await watch.drop()).code == 1012
        assert await watch.setup() == LinkInfo(full_url(server_b), reconnect=True, attempts=1)
        assert client.url == full_url(server_b)
        assert await outcome(harness.spawn(client.outgoing.echo("on b"))) == "on b"
        assert (hub_a.echoed, hub_b.echoed) == (["on a"], ["on b"])
        assert clock.delays == []

    async def test_connect_tries_each_url_in_turn(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        nothing = f"ws://127.0.0.1:{free_port()}"
        client, watch = harness.client([nothing, server.url], EchoApi, reconnect=FakeClock().policy())
        async with asyncio.timeout(WAIT):
            await client.connect()
        assert await watch.setup() == LinkInfo(full_url(server), reconnect=False, attempts=2)
        assert client.url == full_url(server)
        assert len(hub.connections) == 1


# -- calls while the client is down --------------------------------------------------------


class TestCallsWhileDown:
    async def test_a_call_waits_for_the_reconnect(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        clock = FakeClock()
        client, watch = await harness.connect(server.url, EchoApi, reconnect=clock.policy())
        await hub.connections[0].close(GOING_AWAY, "Going away")
        await clock.pause()
        assert client.state is RECONNECTING
        call = harness.spawn(client.outgoing.echo("while down"))
        note = harness.spawn(client.outgoing.note("noted while down"))
        clock.release()
        assert await outcome(call) == "while down"
        await outcome(note)
        assert (await watch.setup()).reconnect
        await until(lambda: len(hub.echoed) == 2)
        assert sorted(hub.echoed) == ["noted while down", "while down"]
        assert len(hub.connections) == 2

    async def test_a_call_times_out_without_a_server(self, harness: Harness) -> None:
        server = await harness.serve(echo_app(Hub()))
        clock = FakeClock()
        client, watch = await harness.connect(server.url, EchoApi, reconnect=clock.policy())
        await server.close()
        await clock.pause()  # never released: the client stays down
        with pytest.raises(grestws.RequestTimeoutError):
            await outcome(harness.spawn(client.with_timeout(0.1).serial()))
        assert client.state is RECONNECTING
        assert watch.setups.empty()

    async def test_without_waiting_a_call_fails_at_once(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        clock = FakeClock()
        client, _ = await harness.connect(
            server.url, EchoApi, reconnect=clock.policy(), wait_for_connection=False, timeout=None
        )
        await hub.connections[0].close(GOING_AWAY, "Going away")
        await clock.pause()
        with pytest.raises(grestws.ConnectionClosedError) as caught:
            await outcome(harness.spawn(client.outgoing.echo("no wait")))
        assert not isinstance(caught.value, ConnectionLostError)
        with pytest.raises(grestws.ConnectionClosedError):
            await outcome(harness.spawn(client.outgoing.note("no wait")))
        assert client.state is RECONNECTING
        assert hub.echoed == []


class Busy:
    """A server interceptor that answers the first ``times`` echoes UNAVAILABLE."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.refused = 0

    async def __call__(self, call: grestws.Call, proceed: grestws.Proceed) -> Any:
        if call.path == "EchoApi.echo" and self.refused < self.times:
            self.refused += 1
            raise UnavailableError("Busy, try again")
        return await proceed()


class TestUnavailableOnALiveConnection:
    """A server that answers UNAVAILABLE and keeps the connection (busy, paused for
    maintenance): the request goes again on that connection after the policy's pauses."""

    async def test_sent_again_after_pauses_until_it_is_served(self, harness: Harness) -> None:
        hub, busy = Hub(), Busy(times=3)
        app = echo_app(hub)
        app.interceptors.append(busy)
        server = await harness.serve(app)
        clock = FakeClock(gated=False)
        client, _ = await harness.connect(server.url, EchoApi, reconnect=clock.policy(initial_delay=0.1))
        assert await outcome(harness.spawn(client.outgoing.echo("at last"))) == "at last"
        assert busy.refused == 3
        assert clock.delays == [0.05, 0.1, 0.2]  # full jitter (0.5 here) over a cap that doubles
        assert hub.echoed == ["at last"]
        assert len(hub.connections) == 1

    async def test_its_own_error_once_no_pause_fits_in_its_timeout(self, harness: Harness) -> None:
        busy = Busy(times=1_000)
        app = echo_app(Hub())
        app.interceptors.append(busy)
        server = await harness.serve(app)
        clock = FakeClock()
        client, _ = await harness.connect(
            server.url, EchoApi, reconnect=clock.policy(initial_delay=10.0, max_delay=10.0)
        )
        with pytest.raises(UnavailableError, match="Busy, try again"):
            await outcome(harness.spawn(client.with_timeout(1.0).echo("never")))
        assert busy.refused == 1  # the first pause (5 s) would outlast the call's timeout
        assert clock.delays == []

    async def test_without_reconnect_it_fails_at_once(self, harness: Harness) -> None:
        busy = Busy(times=1)
        app = echo_app(Hub())
        app.interceptors.append(busy)
        server = await harness.serve(app)
        client, _ = await harness.connect(server.url, EchoApi, reconnect=False)
        with pytest.raises(UnavailableError):
            await outcome(harness.spawn(client.outgoing.echo("once")))
        assert await outcome(harness.spawn(client.outgoing.echo("twice"))) == "twice"


# -- closes that are final ----------------------------------------------------------------


class TestFinalCloses:
    @pytest.mark.parametrize("code", [1008, 1000])
    async def test_a_close_the_server_meant(self, harness: Harness, code: int) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub, auth=True))
        clock = FakeClock()
        dialer = WatchedDialer(clock)
        client, watch = await harness.connect(
            server.url,
            EchoApi,
            headers={"authorization": "Bearer secret-alice"},
            reconnect=clock.policy(),
            dialer=dialer,
        )
        if code == 1008:
            assert await server.close_identity("alice") == 1
            reason = "Access revoked"
        else:
            reason = "Goodbye"
            await hub.connections[0].close(code, reason)
        assert await watch.drop() == Drop(code, reason, reconnecting=False)
        assert await watch.close() == (code, reason)
        assert client.state is CLOSED
        assert client.close_cause is CloseCause.DROPPED
        assert client.close_error is None
        with pytest.raises(grestws.ConnectionClosedError):
            await outcome(harness.spawn(client.outgoing.serial()))
        assert (clock.delays, dialer.pauses_before) == ([], [0])
        assert watch.setups.empty()

    @pytest.mark.parametrize("graceful", [False, True], ids=["1001", "1012"])
    async def test_without_reconnect_any_drop_is_final(self, harness: Harness, graceful: bool) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        client, watch = await harness.connect(server.url, EchoApi, reconnect=False)
        assert client.reconnect is None
        if graceful:
            await server.close()
        else:
            await hub.connections[0].close(GOING_AWAY, "Going away")
        drop = await watch.drop()
        assert (drop.code, drop.reconnecting) == (1012 if graceful else GOING_AWAY, False)
        await watch.close()
        assert client.state is CLOSED
        assert client.close_cause is CloseCause.DROPPED
        with pytest.raises(grestws.ConnectionClosedError):
            await outcome(harness.spawn(client.outgoing.serial()))
        assert len(hub.connections) == 1


# -- closing while the client reconnects ---------------------------------------------------


class TestClosingWhileReconnecting:
    @pytest.mark.parametrize("how", ["close", "disconnect"])
    async def test_in_a_pause(self, harness: Harness, how: str) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        clock = FakeClock()
        dialer = WatchedDialer(clock)
        client, watch = await harness.connect(server.url, EchoApi, reconnect=clock.policy(), dialer=dialer)
        await hub.connections[0].close(GOING_AWAY, "Going away")
        await clock.pause()
        waiting = harness.spawn(client.outgoing.serial())
        async with asyncio.timeout(WAIT):
            await (client.close() if how == "close" else client.disconnect())
        assert client.state is CLOSED
        assert client.close_cause is CloseCause.MANUAL
        assert client.close_error is None
        assert await watch.close() == (GOING_AWAY, "Going away")
        with pytest.raises(grestws.ConnectionClosedError):
            await outcome(waiting)
        clock.release()  # too late: nothing is waiting for it any more
        assert dialer.pauses_before == [0]
        assert len(hub.connections) == 1

    async def test_during_an_attempt(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub, auth=True))
        clock = FakeClock(gated=False)
        asked = asyncio.Event()
        calls = 0

        async def tokens() -> dict[str, str]:
            nonlocal calls
            calls += 1
            if calls > 1:  # the reconnect's handshake: held until the client closes
                asked.set()
                await asyncio.get_running_loop().create_future()
            return {"authorization": "Bearer secret-alice"}

        client, watch = await harness.connect(server.url, EchoApi, headers=tokens, reconnect=clock.policy())
        await hub.connections[0].close(GOING_AWAY, "Going away")
        async with asyncio.timeout(WAIT):
            await asked.wait()
            await client.close()
        assert client.state is CLOSED
        assert client.close_cause is CloseCause.MANUAL
        assert await watch.close() == (GOING_AWAY, "Going away")
        assert watch.setups.empty()
        assert len(hub.connections) == 1

    async def test_as_a_dial_fails(self, harness: Harness) -> None:
        hub = Hub()
        server = await harness.serve(echo_app(hub))
        dialer = RefusingDialer()
        policy = FakeClock(gated=False).policy(max_attempts=2)
        client, _ = await harness.connect(server.url, EchoApi, reconnect=policy, dialer=dialer)
        await hub.connections[0].close(GOING_AWAY, "Going away")
        async with asyncio.timeout(WAIT):
            await dialer.refused.wait()  # the dial failed; the client has not resumed yet
            await client.close()
        assert client.state is CLOSED
        assert client.close_cause is CloseCause.MANUAL
        assert dialer.dials == 2  # the connect, and the attempt close() stopped


@contextlib.asynccontextmanager
async def closing_on_first_request(code: int, reason: str) -> AsyncGenerator[tuple[str, list[str]]]:
    """A hand-written server: its first connection closes with ``code`` and ``reason`` as
    the first request arrives, unanswered; later ones answer it at once."""
    from websockets.asyncio.server import ServerConnection as RawConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    seen: list[str] = []

    async def peer(ws: RawConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()  # h
            await ws.send("k:::null")
            frame = str(await ws.recv())
            seen.append(frame)
            if len(seen) == 1:
                await ws.close(code, reason)
                return
            _, path, request_id, _ = frame.split(":", 3)
            await ws.send(f's:{path}:{request_id}:{{"success":true,"type":"OK","data":"again"}}')
            await ws.wait_closed()

    async with ws_serve(peer, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}", seen


class TestUnansweredAtARestart:
    """A request on its way when a server closes with 1012 "Server restarting" was not run
    (such a server answered every request it received first): it is sent again, whatever
    its method. Any other close leaves it lost."""

    async def test_after_a_drain_it_is_sent_again(self, harness: Harness) -> None:
        async with closing_on_first_request(1012, "Server restarting") as (url, seen):
            client, _ = await harness.connect(url, EchoApi, reconnect=Reconnect(initial_delay=0.0))
            assert await asyncio.wait_for(client.outgoing.echo("once"), WAIT) == "again"
            assert [frame.split(":", 3)[1] for frame in seen] == ["EchoApi.echo", "EchoApi.echo"]
            await client.close()  # before the server goes

    @pytest.mark.parametrize(("code", "reason"), [(1012, ""), (1011, "Server restarting"), (1001, "bye")])
    async def test_after_any_other_close_it_is_lost(self, harness: Harness, code: int, reason: str) -> None:
        async with closing_on_first_request(code, reason) as (url, seen):
            client, _ = await harness.connect(url, EchoApi, reconnect=Reconnect(initial_delay=0.0))
            with pytest.raises(ConnectionLostError) as caught:
                await asyncio.wait_for(client.outgoing.echo("once"), WAIT)
            assert (caught.value.code, caught.value.reason) == (code, reason)
            assert len(seen) == 1
            await client.close()  # before the server goes


class TestFirstConnect:
    async def test_retry_waits_for_a_server_that_is_not_up_yet(self, harness: Harness) -> None:
        port = free_port()
        clock = FakeClock()
        client, watch = harness.client(f"ws://127.0.0.1:{port}", EchoApi, reconnect=clock.policy())
        connecting = harness.spawn(client.connect(retry=True))
        assert await clock.pause() == 0.05  # the first attempt failed: a pause is drawn
        await harness.serve(echo_app(Hub()), port)
        clock.release()
        await asyncio.wait_for(connecting, WAIT)
        link = await watch.setup()
        assert (link.reconnect, link.attempts) == (False, 2)
        assert await asyncio.wait_for(client.outgoing.echo("up"), WAIT) == "up"

    async def test_retry_gives_up_after_max_attempts(self, harness: Harness) -> None:
        clock = FakeClock(gated=False)
        policy = clock.policy(max_attempts=3, jitter=lambda: 1.0)
        client, _ = harness.client(f"ws://127.0.0.1:{free_port()}", EchoApi, reconnect=policy)
        with pytest.raises(grestws.ConnectError):
            await asyncio.wait_for(client.connect(retry=True), WAIT)
        assert clock.delays == [0.1, 0.2]
        assert client.close_cause is CloseCause.RETRIES_EXHAUSTED

    async def test_without_retry_the_first_failure_is_raised(self, harness: Harness) -> None:
        client, _ = harness.client(f"ws://127.0.0.1:{free_port()}", EchoApi)
        with pytest.raises(grestws.ConnectError):
            await asyncio.wait_for(client.connect(), WAIT)
        assert client.close_cause is CloseCause.UNRECOVERABLE
