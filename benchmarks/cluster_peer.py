"""The processes of the ``cluster`` shape: one server, one process of subscribers, the publisher.

:mod:`benchmarks.cluster` starts them; each peer module
(``benchmarks/peers/grestws_cluster.py``, ``benchmarks/peers/socketio_cluster.py``) hands
its server and its :class:`ClusterPeer` to :func:`main`, which runs the role its command
line names. They talk to the orchestrator in lines: the orchestrator writes commands to
stdin, the process answers on stdout.

``server --loop L [--redis URL] [--cprofile PATH]``
    Serves on 127.0.0.1 and a free port (through the Redis at ``URL``, or alone without
    it) and prints the port. ``SIGUSR1`` starts cProfile and ``SIGUSR2`` stops it and
    writes ``PATH`` (with ``--cprofile``); ``SIGTERM`` prints one JSON line of the
    server's own counts and ends the process.
``client --loop L --ports P1,P2,... --connections N --offset K --count C --warmup W --probes Q``
    Opens ``N`` subscribers, the ``i``-th to ``ports[(K + i) % len(ports)]``, each of which
    joins the room; prints ``ready``. Prints ``warm`` once every subscriber got the ``W``
    warm-up ticks, one JSON line once they got the ``C`` timed ones, and another once
    they got the ``Q`` probes, with their latencies (each line at the latest at the
    deadline, with what arrived). Closes everything on ``exit``.
``publisher --loop L --ports P --count C --warmup W --depth D --probes Q``
    Opens one connection (in no room); prints ``ready``. On ``warmup`` publishes the
    ``W`` warm-up ticks and prints ``sent``; on ``go`` publishes the ``C`` timed ticks,
    ``D`` calls in flight, and prints one JSON line; on ``probe MS`` publishes the ``Q``
    probes one at a time, ``MS`` milliseconds apart, and prints ``probed``; closes on
    ``exit``.

Ticks ``0 .. W-1`` are the warm-up, ``W .. W+C-1`` the timed ones and the rest the probes:
the timed ticks measure throughput (the publisher keeps ``D`` calls in flight, so they
queue up in the servers' and clients' buffers), the probes, sent one at a time with the
system otherwise idle, measure latency.

A tick's ``ts`` is ``time.monotonic_ns() // 1000`` when the publisher sent it: on Linux
the monotonic clock is the same in every process, so a subscriber's latency is its own
clock minus ``ts``. Every loop is bounded by a count and every wait by ``--timeout``.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from benchmarks.common import LOOPS, cpu_seconds, prepare_process, run_loop
from benchmarks.payloads import Tick

__all__ = ("ROOM", "ClusterPeer", "OnTick", "main", "new_tick")

ROOM = "bench"
"""The room every subscriber joins and every tick goes to."""

C = TypeVar("C")
OnTick = Callable[[Tick], None]
Serve = Callable[[str | None], Awaitable[tuple[int, Callable[[], dict[str, Any]]]]]
"""``serve(redis_url)``: start the server, return its port and a function giving its counts."""

_OPEN_CONCURRENCY = 50
_LATENCY_SAMPLE = 1000
"""Latencies each client process reports: evenly spaced ranks of its sorted latencies."""
_CLOSE_SECONDS = 10.0
_STALL_SECONDS = 10.0
"""A client process stops waiting for ticks after this long without one."""


def new_tick(seq: int) -> Tick:
    """The ``seq``-th tick, stamped with the monotonic clock in microseconds."""
    return Tick(seq=seq, user="alice", text="hello, world!", ts=time.monotonic_ns() // 1000)


class ClusterPeer(abc.ABC, Generic[C]):
    """The client side of one peer in the cluster shape; ``C`` is its connection type."""

    @abc.abstractmethod
    async def connect(self, port: int, on_tick: OnTick | None = None) -> C:
        """Open one connection to the server on ``port``; ``on_tick`` gets every tick it receives."""

    @abc.abstractmethod
    async def join(self, conn: C) -> None:
        """Have the server put ``conn`` in :data:`ROOM` (a call answered once it is in)."""

    @abc.abstractmethod
    async def publish(self, conn: C, msg: Tick) -> None:
        """The call whose handler pushes ``msg`` to :data:`ROOM` on every server."""

    @abc.abstractmethod
    async def close(self, conn: C) -> None:
        """Close ``conn``."""


@dataclass(frozen=True)
class _Args:
    role: str
    loop: str
    redis: str | None
    cprofile: str | None
    ports: tuple[int, ...]
    connections: int
    offset: int
    count: int
    warmup: int
    depth: int
    probes: int
    timeout: float


def _parse(argv: Sequence[str]) -> _Args:
    parser = argparse.ArgumentParser(description="one process of the cluster shape")
    parser.add_argument("role", choices=("server", "client", "publisher"))
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--redis", default=None, help="the Redis URL (server; none: a single process)")
    parser.add_argument("--cprofile", default=None, help="server: write a cProfile of SIGUSR1..SIGUSR2 here")
    parser.add_argument("--ports", default="", help="comma-separated server ports")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--probes", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0)
    ns = parser.parse_args(argv)
    ports = tuple(int(p) for p in ns.ports.split(",") if p.strip())
    if ns.role != "server" and not ports:
        parser.error("--ports is required")
    return _Args(
        ns.role,
        ns.loop,
        ns.redis,
        ns.cprofile,
        ports,
        ns.connections,
        ns.offset,
        ns.count,
        ns.warmup,
        ns.depth,
        ns.probes,
        ns.timeout,
    )


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _stdin() -> asyncio.StreamReader:
    """The orchestrator's commands, read without a thread (on asyncio and on uvloop)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _command(reader: asyncio.StreamReader, expected: str) -> None:
    line = (await reader.readline()).decode().strip()
    if line != expected:
        raise RuntimeError(f"expected the command {expected!r}, got {line!r}")


async def _close_all(peer: ClusterPeer[Any], conns: Sequence[Any]) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_SECONDS):
            await asyncio.gather(*(peer.close(conn) for conn in conns), return_exceptions=True)


# -- server -------------------------------------------------------------------------------------


async def _server(serve: Serve, args: _Args) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    port, counts = await serve(args.redis)
    profiler = cProfile.Profile() if args.cprofile else None
    if profiler is not None:
        loop.add_signal_handler(signal.SIGUSR1, profiler.enable)

        def dump() -> None:
            profiler.disable()
            profiler.dump_stats(str(args.cprofile))

        loop.add_signal_handler(signal.SIGUSR2, dump)
    _say(str(port))
    await stop.wait()
    _say(json.dumps({"counts": counts(), "cpu": cpu_seconds()}))
    os._exit(0)  # the clients are gone; a graceful shutdown would only add time


# -- subscribers --------------------------------------------------------------------------------


class _Subscriber:
    """One subscriber's hook: checks the order of its ticks and counts them."""

    __slots__ = ("counter", "last", "port")

    def __init__(self, counter: _Counter, port: int) -> None:
        self.counter = counter
        self.port = port
        self.last = -1

    def __call__(self, tick: Tick) -> None:
        counter = self.counter
        now = time.monotonic_ns()
        seq = tick.seq
        if seq <= self.last:
            counter.out_of_order[self.port] = counter.out_of_order.get(self.port, 0) + 1
        self.last = seq
        if seq < counter.warmup:
            counter.warm += 1
            if counter.warm == counter.warm_expected:
                counter.warm_done.set()
        elif seq < counter.probe_from:
            if counter.received == 0:
                counter.first = now
            counter.received += 1
            counter.last = now
            if counter.received == counter.expected:
                counter.done.set()
        else:
            counter.latencies.append(now // 1000 - tick.ts)
            if len(counter.latencies) == counter.probes_expected:
                counter.probed.set()


class _Counter:
    """The ticks of all the subscribers of this process."""

    def __init__(self, subscribers: int, warmup: int, count: int, probes: int) -> None:
        self.warmup = warmup
        self.probe_from = warmup + count
        self.warm_expected = subscribers * warmup
        self.expected = subscribers * count
        self.probes_expected = subscribers * probes
        self.warm = 0
        self.received = 0
        self.out_of_order: dict[int, int] = {}
        self.first = 0
        self.last = 0
        self.latencies: list[int] = []
        self.warm_done = asyncio.Event()
        self.done = asyncio.Event()
        self.probed = asyncio.Event()
        for event, expected in ((self.warm_done, self.warm_expected), (self.probed, self.probes_expected)):
            if expected == 0:
                event.set()


def _sample(values: list[int], n: int) -> list[int]:
    """``n`` evenly spaced ranks of ``values`` (sorted here): a sample each of whose points
    stands for ``len(values) / n`` values."""
    values.sort()
    if len(values) <= n:
        return values
    step = len(values) / n
    return [values[int((i + 0.5) * step)] for i in range(n)]


async def _client(peer: ClusterPeer[Any], args: _Args) -> None:
    reader = await _stdin()
    counter = _Counter(args.connections, args.warmup, args.count, args.probes)
    gate = asyncio.Semaphore(_OPEN_CONCURRENCY)
    conns: list[Any] = []

    async def subscribe(i: int) -> None:
        port = args.ports[(args.offset + i) % len(args.ports)]
        async with gate:
            conn = await peer.connect(port, _Subscriber(counter, port))
            conns.append(conn)
            await peer.join(conn)

    async def wait(event: asyncio.Event) -> None:
        """Until ``event`` is set, the deadline passes, or no tick came for a while."""
        deadline = time.monotonic() + args.timeout
        seen = -1
        while not event.is_set() and time.monotonic() < deadline:
            now = counter.warm + counter.received + len(counter.latencies)
            if now == seen:
                return  # nothing for _STALL_SECONDS: what is missing is lost
            seen = now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(_STALL_SECONDS, max(0.0, deadline - time.monotonic()))):
                    await event.wait()

    try:
        async with asyncio.timeout(args.timeout):
            await asyncio.gather(*(subscribe(i) for i in range(args.connections)))
        _say("ready")
        async with asyncio.timeout(args.timeout):
            await counter.warm_done.wait()
        _say("warm")
        await wait(counter.done)
        result = {
            "subscribers": args.connections,
            "expected": counter.expected,
            "received": counter.received,
            "first_ns": counter.first,
            "last_ns": counter.last,
        }
        _say(json.dumps(result))
        await wait(counter.probed)
        probes = {
            "probes_expected": counter.probes_expected,
            "probes_received": len(counter.latencies),
            "latency_us_sample": _sample(counter.latencies, _LATENCY_SAMPLE),
            "out_of_order": {str(port): n for port, n in counter.out_of_order.items()},
        }
        _say(json.dumps(probes))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.timeout):
                await _command(reader, "exit")
    finally:
        await _close_all(peer, conns)


# -- publisher ----------------------------------------------------------------------------------


async def _publish(peer: ClusterPeer[Any], conn: Any, first: int, count: int, depth: int) -> None:
    """Publish ticks ``first .. first + count - 1``, ``depth`` calls in flight."""
    following = first
    end = first + count

    async def worker() -> None:
        nonlocal following
        while following < end:
            seq = following
            following += 1
            await peer.publish(conn, new_tick(seq))

    await asyncio.gather(*(worker() for _ in range(min(depth, count))))


async def _publisher(peer: ClusterPeer[Any], args: _Args) -> None:
    reader = await _stdin()
    conn = await peer.connect(args.ports[0])
    try:
        _say("ready")
        async with asyncio.timeout(args.timeout):
            await _command(reader, "warmup")
            await _publish(peer, conn, 0, args.warmup, args.depth)
        _say("sent")
        async with asyncio.timeout(args.timeout):
            await _command(reader, "go")
            start = time.monotonic_ns()
            await _publish(peer, conn, args.warmup, args.count, args.depth)
            elapsed = time.monotonic_ns() - start
        _say(json.dumps({"published": args.count, "seconds": elapsed / 1e9}))
        async with asyncio.timeout(args.timeout):
            command = (await reader.readline()).decode().split()
            if command[:1] != ["probe"] or len(command) != 2:
                raise RuntimeError(f"expected the command 'probe MS', got {command!r}")
            gap = float(command[1]) / 1e3
            for seq in range(args.warmup + args.count, args.warmup + args.count + args.probes):
                await peer.publish(conn, new_tick(seq))
                await asyncio.sleep(gap)
        _say("probed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.timeout):
                await _command(reader, "exit")
    finally:
        await _close_all(peer, [conn])


def main(serve: Serve, make_peer: Callable[[], ClusterPeer[Any]]) -> None:
    """Run the role ``sys.argv`` names with this peer's ``serve`` and client."""
    args = _parse(sys.argv[1:])
    prepare_process(None)
    if args.role == "server":
        run_loop(_server(serve, args), args.loop)
    elif args.role == "client":
        run_loop(_client(make_peer(), args), args.loop)
    else:
        run_loop(_publisher(make_peer(), args), args.loop)
