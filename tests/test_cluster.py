"""Several ``grestws serve`` processes of one App, linked by a real Redis: rooms, users,
presence and forced disconnects across the processes, and ``--workers``.

Each test starts its own Redis (the ``redis_server`` fixture) and its own processes; the
clients are spread over the processes by connecting to each one's port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest

import grestws
from grestws.broker.redis import RedisBroker
from tests.cli_apps import HangApi
from tests.cluster_app import (
    LOBBY,
    Chat,
    ClusterApi,
    ClusterClient,
    ClusterServer,
    Me,
    Say,
    Tell,
    Whisper,
)
from tests.redis_server import RedisServer
from tests.scrape import eventually, value

pytestmark = [pytest.mark.slow, pytest.mark.timeout(50)]

ROOT = Path(__file__).resolve().parents[1]
START_WAIT = 15.0
WAIT = 5.0
TTL = 2.0
"""The broker's presence_ttl in these tests: a dead process's members vanish within it."""
LISTENING = re.compile(r"grestws: listening on (ws://127\.0\.0\.1:(\d+)/ws/cluster)$")
APP = "tests.cluster_app:app"


class Process:
    """A ``grestws serve`` process whose log is read as it comes (so that it never blocks
    on a full pipe) and kept."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._fresh: asyncio.Queue[str | None] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode().rstrip()
            self.lines.append(text)
            self._fresh.put_nowait(text)
        self._fresh.put_nowait(None)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def expect(self, pattern: re.Pattern[str], timeout: float = START_WAIT) -> re.Match[str]:
        """The next log line that matches ``pattern`` (lines before it are passed over)."""

        async def scan() -> re.Match[str]:
            while (text := await self._fresh.get()) is not None:
                if match := pattern.search(text):
                    return match
            self._fresh.put_nowait(None)
            raise AssertionError(f"no line matching {pattern.pattern!r} in:\n{self.log}")

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no line matching {pattern.pattern!r} within {timeout} s in:\n{self.log}"
            ) from None

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def finish(self) -> int:
        """Wait (bounded) for the exit and the end of the log (which every worker holds
        open too); the exit code."""
        try:
            code = await asyncio.wait_for(self.process.wait(), START_WAIT)
            await asyncio.wait_for(self._reader, WAIT)
        except TimeoutError:
            raise AssertionError(f"still running after {START_WAIT} s:\n{self.log}") from None
        return code


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GRESTWS_BROKER", None)
    return env


@contextlib.asynccontextmanager
async def serving(*args: str) -> AsyncIterator[Process]:
    """``grestws serve`` with ``args``, in a process group of its own (its workers join
    it); whatever of the group the test leaves running is killed."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "grestws", "serve", *args),
        cwd=ROOT,
        env=environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    served = Process(process)
    try:
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group's id is the process's
        with contextlib.suppress(AssertionError):
            await served.finish()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


NAMESPACE = "cluster"


def broker_url(redis_server: RedisServer) -> str:
    return f"{redis_server.url}?namespace={NAMESPACE}&presence_ttl={TTL}&operation_timeout=2"


# -- clients ------------------------------------------------------------------------------


class Device:
    """One client connection of a user: what it is pushed, and how it closed."""

    def __init__(self, client: grestws.Client[ClusterServer, ClusterClient], inbox: Inbox, me: Me) -> None:
        self.client = client
        self.api = client.outgoing
        self.inbox = inbox
        self.me = me
        self.closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
        client.on_close(self._on_close)

    def _on_close(self, code: int | None, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result((code, reason))

    async def next(self) -> Chat:
        """The next push to this device."""
        return await asyncio.wait_for(self.inbox.chats.get(), WAIT)


class Inbox(ClusterClient):
    def __init__(self) -> None:
        self.chats: asyncio.Queue[Chat] = asyncio.Queue()

    async def chat(self, chat: Chat) -> None:
        self.chats.put_nowait(chat)


class Devices:
    """The clients of a test, all closed when it ends."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self._stack = stack

    async def connect(self, url: str, user: str) -> Device:
        inbox = Inbox()
        schema = ClusterApi.use(grestws.BearerAuth(f"secret-{user}"))
        client = await asyncio.wait_for(grestws.connect(url, schema, handlers=inbox, reconnect=False), WAIT)
        self._stack.push_async_callback(client.close)
        me = await asyncio.wait_for(client.outgoing.whoami(), WAIT)
        return Device(client, inbox, me)


@pytest.fixture
async def devices() -> AsyncIterator[Devices]:
    async with contextlib.AsyncExitStack() as stack:
        yield Devices(stack)


async def say(device: Device, room: str, text: str, *, exclude_me: bool = False) -> int:
    return await asyncio.wait_for(device.api.say(Say(room, text, exclude_me)), WAIT)


async def expect_next(devices: Sequence[Device], text: str) -> None:
    """Each device's next push has ``text``."""
    got = [await device.next() for device in devices]
    assert [chat.text for chat in got] == [text] * len(devices)


async def presence_becomes(
    device: Device, room: str, users: list[str], within: float, connections: list[str] | None = None
) -> float:
    """Poll ``room``'s presence through ``device`` until its users are ``users`` (and its
    connections ``connections``, when given); the seconds it took. Presence is written in
    the background, each process on its own, so it is polled (bounded)."""
    start = time.monotonic()
    while True:
        present = await asyncio.wait_for(device.api.presence(room), WAIT)
        elapsed = time.monotonic() - start
        if present.users == users and connections in (None, present.connections):
            return elapsed
        assert elapsed < within, (
            f"presence of {room} is {present.users} {present.connections} after {elapsed:.2f} s, "
            f"not {users} {connections}"
        )
        await asyncio.sleep(0.05)


# -- three processes, one Redis -----------------------------------------------------------


class Cluster:
    def __init__(self, processes: list[Process], urls: list[str]) -> None:
        self.processes = processes
        self.urls = urls


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:
    """Three ``grestws serve`` processes of tests.cluster_app, each on a port of its own,
    linked by one Redis; each must stop cleanly (exit 0) unless the test killed it."""
    url = broker_url(redis_server)
    async with contextlib.AsyncExitStack() as stack:
        processes = [
            await stack.enter_async_context(serving(APP, "--port", "0", "--broker", url)) for _ in range(3)
        ]
        urls = [(await process.expect(LISTENING))[1] for process in processes]
        assert len(set(urls)) == 3
        yield Cluster(processes, urls)
        for process in processes:
            if process.process.returncode is None:
                process.signal(signal.SIGTERM)
        for process in processes:
            code = await process.finish()
            if code != -signal.SIGKILL:
                assert code == 0, process.log
                assert "Traceback" not in process.log
                assert "ERROR" not in process.log


class TestCluster:
    async def test_every_process_is_linked(self, cluster: Cluster, devices: Devices) -> None:
        nodes = [await devices.connect(url, "alice") for url in cluster.urls]
        assert len({device.me.node for device in nodes}) == 3
        assert len({device.me.pid for device in nodes}) == 3
        assert all(device.me.linked for device in nodes)
        assert "broker: redis://127.0.0.1:" in cluster.processes[0].log

    async def test_a_room_message_reaches_every_member_once(self, cluster: Cluster, devices: Devices) -> None:
        n0, n1, n2 = cluster.urls
        alice = await devices.connect(n0, "alice")
        bob = await devices.connect(n1, "bob")
        alice2 = await devices.connect(n1, "alice")
        carol = await devices.connect(n2, "carol")
        dave = await devices.connect(n0, "dave")  # in the lobby, not in "general"
        members = [alice, bob, alice2, carol]
        for device in members:
            await device.api.join("general")

        assert await say(bob, "general", "hello") == 2  # bob and alice2 are on bob's process
        await expect_next(members, "hello")
        # Exactly once: the next push of every member is the one sent after, and dave
        # (no member) gets only that.
        await say(bob, LOBBY, "after")
        await expect_next([*members, dave], "after")
        assert all(device.inbox.chats.empty() for device in [*members, dave])

    async def test_leaving_a_room(self, cluster: Cluster, devices: Devices) -> None:
        n0, n1, _ = cluster.urls
        alice = await devices.connect(n0, "alice")
        bob = await devices.connect(n1, "bob")
        for device in (alice, bob):
            await device.api.join("general")
        await alice.api.leave("general")
        await say(bob, "general", "alice left")
        await expect_next([bob], "alice left")
        await say(bob, LOBBY, "after")
        await expect_next([alice, bob], "after")

    async def test_the_sender_is_left_out(self, cluster: Cluster, devices: Devices) -> None:
        n0, n1, n2 = cluster.urls
        bob = await devices.connect(n1, "bob")
        others = [
            await devices.connect(n1, "bob"),  # the sender's other device, on its process
            await devices.connect(n2, "bob"),  # and on another
            await devices.connect(n0, "alice"),
            await devices.connect(n2, "carol"),
        ]
        assert await say(bob, LOBBY, "not to me", exclude_me=True) == 1
        await expect_next(others, "not to me")
        await say(bob, LOBBY, "to all")
        await expect_next([bob, *others], "to all")

    async def test_a_user_gets_it_on_every_device(self, cluster: Cluster, devices: Devices) -> None:
        n0, n1, n2 = cluster.urls
        alices = [await devices.connect(url, "alice") for url in (n0, n1, n2)]
        alices.append(await devices.connect(n2, "alice"))
        bob = await devices.connect(n1, "bob")
        carol = await devices.connect(n2, "carol")

        assert await asyncio.wait_for(carol.api.tell(Tell("alice", "for alice")), WAIT) == 2
        await expect_next(alices, "for alice")
        await say(carol, LOBBY, "after")
        await expect_next([*alices, bob, carol], "after")

        # One device by its connection id, on another process.
        whisper = Whisper(alices[0].me.connection, "psst")
        assert await asyncio.wait_for(carol.api.whisper(whisper), WAIT) == 0
        chat = await alices[0].next()
        assert (chat.kind, chat.text, chat.sender) == ("connection", "psst", "carol")
        await say(carol, LOBBY, "after the whisper")
        await expect_next([*alices, bob, carol], "after the whisper")

    async def test_presence_lists_the_connected_users(self, cluster: Cluster, devices: Devices) -> None:
        n0, n1, n2 = cluster.urls
        alice = await devices.connect(n0, "alice")
        alice2 = await devices.connect(n1, "alice")
        bob = await devices.connect(n1, "bob")
        carol = await devices.connect(n2, "carol")
        everyone = [alice, alice2, bob, carol]
        connections = sorted(device.me.connection for device in everyone)
        for device in everyone:
            await presence_becomes(device, LOBBY, ["alice", "bob", "carol"], WAIT, connections)

        await carol.client.close()
        for device in (alice, alice2, bob):
            await presence_becomes(device, LOBBY, ["alice", "bob"], WAIT)
        await alice.client.close()  # alice is still present on her other device
        remaining = sorted(device.me.connection for device in (alice2, bob))
        await presence_becomes(bob, LOBBY, ["alice", "bob"], WAIT, remaining)

    async def test_a_killed_process_drops_out_of_presence_within_the_ttl(
        self, cluster: Cluster, devices: Devices
    ) -> None:
        n0, n1, n2 = cluster.urls
        alice = await devices.connect(n0, "alice")
        bob = await devices.connect(n1, "bob")
        carol = await devices.connect(n2, "carol")
        dave = await devices.connect(n2, "dave")
        await presence_becomes(alice, LOBBY, ["alice", "bob", "carol", "dave"], WAIT)

        cluster.processes[2].signal(signal.SIGKILL)
        elapsed = await presence_becomes(alice, LOBBY, ["alice", "bob"], TTL + 1.0)
        assert elapsed <= TTL + 0.5
        await presence_becomes(bob, LOBBY, ["alice", "bob"], WAIT)
        for device in (carol, dave):
            code, _ = await asyncio.wait_for(asyncio.shield(device.closed), WAIT)
            assert code != 1000
        # The others still reach each other.
        await say(alice, LOBBY, "still here")
        await expect_next([alice, bob], "still here")

    async def test_force_disconnect_a_user_on_every_process(self, cluster: Cluster, devices: Devices) -> None:
        n0, n1, n2 = cluster.urls
        admin = await devices.connect(n0, "admin")
        bobs = [await devices.connect(n1, "bob"), await devices.connect(n2, "bob")]
        carol = await devices.connect(n2, "carol")

        assert await asyncio.wait_for(admin.api.kick("bob"), WAIT) == 0  # none of admin's process
        for bob in bobs:
            assert await asyncio.wait_for(asyncio.shield(bob.closed), WAIT) == (1008, "Kicked")
        assert (await carol.api.whoami()).user == "carol"
        await presence_becomes(admin, LOBBY, ["admin", "carol"], WAIT)

        # A user of the caller's own process, and of others at once.
        carol2 = await devices.connect(n0, "carol")
        assert await asyncio.wait_for(admin.api.kick("carol"), WAIT) == 1
        for device in (carol, carol2):
            assert await asyncio.wait_for(asyncio.shield(device.closed), WAIT) == (1008, "Kicked")
        await presence_becomes(admin, LOBBY, ["admin"], WAIT)

    async def test_a_kicked_client_learns_it_at_once(self, cluster: Cluster, devices: Devices) -> None:
        n0, n1, _ = cluster.urls
        admin = await devices.connect(n0, "admin")
        bob = await devices.connect(n1, "bob")
        await asyncio.wait_for(admin.api.kick("bob"), WAIT)
        assert await asyncio.wait_for(asyncio.shield(bob.closed), 1.0) == (1008, "Kicked")


# -- --workers ----------------------------------------------------------------------------


async def spread(devices: Devices, url: str, user: str, workers: int, tries: int = 60) -> list[Device]:
    """Connect ``user`` until there is a device on each of ``workers`` processes (the
    kernel picks the worker of each connection); one device per worker."""
    found: dict[int, Device] = {}
    for _ in range(tries):
        device = await devices.connect(url, user)
        if device.me.pid in found:
            await device.client.close()
        else:
            found[device.me.pid] = device
            if len(found) == workers:
                return list(found.values())
    raise AssertionError(f"{tries} connections reached {len(found)} of {workers} workers")


def worker_pids(process: Process) -> dict[int, int]:
    """Every worker's latest pid by index, from the supervisor's log."""
    pids: dict[int, int] = {}
    for line in process.lines:
        if match := re.search(r"grestws: worker (\d+) \(pid (\d+)\) serves", line):
            pids[int(match[1])] = int(match[2])
    return pids


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class TestWorkers:
    async def test_two_workers_serve_one_port_and_stop_on_a_signal(self, devices: Devices) -> None:
        port = free_port()
        async with serving(APP, "--port", str(port), "--workers", "2") as served:
            match = await served.expect(LISTENING)
            assert int(match[2]) == port
            url = match[1]
            await served.expect(re.compile("without a broker"))
            pids = worker_pids(served)
            assert len(pids) == 2
            found = await spread(devices, url, "alice", 2)
            assert {device.me.pid for device in found} == set(pids.values())
            served.signal(signal.SIGTERM)
            assert await served.finish() == 0, served.log
        assert all(gone(pid) for pid in pids.values())
        assert sum("grestws: listening on" in line for line in served.lines) == 1
        assert sum(line.endswith("] grestws: stopped") for line in served.lines) == 2
        assert served.lines[-1].endswith(" INFO grestws: stopped")
        assert "Traceback" not in served.log

    async def test_metrics_of_every_worker(self, devices: Devices) -> None:
        port = free_port()
        args = ("--port", str(port), "--workers", "2", "--metrics-port", "0")
        async with serving(APP, *args) as served, httpx.AsyncClient(timeout=WAIT) as http:
            metrics = (await served.expect(re.compile(r"metrics of every worker on (http://\S+)$")))[1]
            url = (await served.expect(LISTENING))[1]
            first, second = await spread(devices, url, "alice", 2)
            labels = {"contract": "ClusterApi", "path": "/ws/cluster"}
            samples = await eventually(http, metrics, "grestws_connections_active", 2, **labels)
            accepted = value(samples, "grestws_connections_total", **labels, result="accepted")
            whoami = {"path": "/ws/cluster", "method": "ClusterApi.whoami", "kind": "request"}
            assert value(samples, "grestws_requests_total", **whoami, result="OK") == accepted >= 2
            os.kill(first.me.pid, signal.SIGKILL)  # its live gauge goes with it; its counts stay
            await eventually(http, metrics, "grestws_connections_active", 1, **labels)
            del second
            served.signal(signal.SIGTERM)
            assert await served.finish() == 0, served.log

    async def test_a_ctrl_c_to_the_process_group_counts_once(self) -> None:
        port = free_port()
        async with serving(APP, "--port", str(port), "--workers", "2") as served:
            await served.expect(LISTENING)
            os.killpg(served.process.pid, signal.SIGINT)  # the whole group, as a terminal's Ctrl-C
            assert await served.finish() == 0, served.log
        assert "forced" not in served.log

    async def test_workers_with_a_broker_reach_each_other(
        self, redis_server: RedisServer, devices: Devices
    ) -> None:
        port = free_port()
        async with serving(
            APP, "--port", str(port), "--workers", "2", "--broker", broker_url(redis_server)
        ) as served:
            url = (await served.expect(LISTENING))[1]
            one, two = await spread(devices, url, "alice", 2)
            bob = await devices.connect(url, "bob")
            for device in (one, two):
                await device.api.join("general")
            assert await say(one, "general", "across", exclude_me=True) == 0
            await expect_next([two], "across")
            assert await asyncio.wait_for(bob.api.tell(Tell("alice", "both")), WAIT) in (0, 1)
            await expect_next([one, two], "both")
            await presence_becomes(bob, "general", ["alice"], WAIT)
            # Stopped with its clients still in their rooms: each worker writes their
            # leaves as it closes them, and stops all the same.
            served.signal(signal.SIGINT)
            for device in (one, two, bob):
                assert await asyncio.wait_for(asyncio.shield(device.closed), WAIT) == (
                    1012,
                    "Server restarting",
                )
            assert await served.finish() == 0, served.log
        assert "without a broker" not in served.log
        assert sum("grestws: listening on" in line for line in served.lines) == 1

    async def test_a_dead_worker_is_restarted(self, devices: Devices) -> None:
        port = free_port()
        async with serving(APP, "--port", str(port), "--workers", "2") as served:
            url = (await served.expect(LISTENING))[1]
            old = worker_pids(served)[2]
            os.kill(old, signal.SIGKILL)
            await served.expect(
                re.compile(rf"ERROR grestws: worker 2 \(pid {old}\) was killed by SIGKILL; restarting it$")
            )
            new = int((await served.expect(re.compile(r"worker 2 \(pid (\d+)\) serves again$")))[1])
            assert new != old
            found = await spread(devices, url, "alice", 2)
            assert {device.me.pid for device in found} == {worker_pids(served)[1], new}
            served.signal(signal.SIGTERM)
            assert await served.finish() == 0, served.log

    async def test_gives_up_after_too_many_deaths(self) -> None:
        port = free_port()
        async with serving(APP, "--port", str(port), "--workers", "2") as served:
            await served.expect(LISTENING)
            pid = worker_pids(served)[2]
            for _ in range(5):
                os.kill(pid, signal.SIGKILL)
                pid = int((await served.expect(re.compile(r"worker 2 \(pid (\d+)\) serves again$")))[1])
            os.kill(pid, signal.SIGKILL)
            await served.expect(re.compile(r"6 unexpected exits within 60 s, giving up$"))
            assert await served.finish() == 1, served.log
        assert served.lines[-1].endswith("grestws: stopped")

    async def test_a_second_signal_forces_the_workers(self) -> None:
        port = free_port()
        async with serving("tests.cli_apps:hang_app", "--port", str(port), "--workers", "2") as served:
            url = (await served.expect(re.compile(r"grestws: listening on (ws://\S+)$")))[1]
            async with grestws.connect(url, HangApi) as client:
                call = asyncio.ensure_future(client.outgoing.hang())
                await served.expect(re.compile("hang started"))
                served.signal(signal.SIGINT)
                await served.expect(re.compile(r"waiting up to 60 s for 1 call in flight"))
                served.signal(signal.SIGINT)
                assert await served.finish() == 1, served.log
                with pytest.raises(grestws.ServerError, match="Cancelled: the server is shutting down"):
                    await asyncio.wait_for(call, WAIT)
        assert "hang cancelled" in served.log
        assert "shutdown forced" in served.log

    async def test_workers_stop_when_their_supervisor_is_killed(self) -> None:
        port = free_port()
        async with serving(APP, "--port", str(port), "--workers", "2") as served:
            await served.expect(LISTENING)
            pids = worker_pids(served)
            served.signal(signal.SIGKILL)
            # The log ends once every worker, which holds it open too, has exited.
            assert await served.finish() == -signal.SIGKILL, served.log
        assert sum("the supervising process is gone" in line for line in served.lines) == 2
        assert sum(line.endswith("] grestws: stopped") for line in served.lines) == 2
        assert len(pids) == 2

    async def test_a_worker_that_cannot_start(self) -> None:
        port = free_port()
        async with serving("nope:app", "--port", str(port), "--workers", "3") as served:
            assert await served.finish() == 2, served.log
        assert served.log.count("No module named 'nope'") == 1
        assert "worker 1 (pid" in served.log
        assert "worker 2" not in served.log

    async def test_an_app_that_cannot_be_served(self) -> None:
        port = free_port()
        async with serving(
            "tests.test_permissions:unservable_app", "--port", str(port), "--workers", "2"
        ) as served:
            assert await served.finish() == 2, served.log
        assert served.log.count("this App cannot be served") == 1
        assert "listening on ws" not in served.log

    async def test_a_port_in_use(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            async with serving(APP, "--port", str(port), "--workers", "2") as served:
                assert await served.finish() == 1, served.log
        assert f"cannot listen on 127.0.0.1:{port}" in served.log
        assert "worker" not in served.log

    async def test_port_0_is_a_usage_error(self) -> None:
        async with serving(APP, "--port", "0", "--workers", "2") as served:
            assert await served.finish() == 2, served.log
        assert "error: --workers: the workers share one port" in served.log


class TestBrokerStop:
    async def test_stop_right_after_a_presence_change(self, redis_server: RedisServer) -> None:
        """A regression test: on Python 3.11, asyncio.wait_for returns the result of an inner
        future that is done when a cancel arrives, so a presence task that waited with it
        could swallow stop()'s cancel, and stop() (with the shutdown of grestws serve
        --broker) waited for good."""
        broker = RedisBroker(redis_server.url)
        await broker.start(lambda envelope: None, list)
        tasks = list(broker._tasks)
        broker.presence_changed((), ())  # what a join or a leave (a connection closing) does
        stopping = asyncio.ensure_future(broker.stop())
        try:
            done, _ = await asyncio.wait([stopping], timeout=3)
            assert done, "RedisBroker.stop() still waits after 3 s"
        finally:
            for task in tasks:  # were it stuck, a second cancel ends it
                task.cancel()
            await asyncio.wait([stopping], timeout=WAIT)
