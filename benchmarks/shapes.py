"""The benchmark shapes, written once against :class:`Peer`, and the peer processes' entry.

Each peer module implements :class:`Peer` (how to connect, call, ask the server for its
stats and start a fan-out) and a ``serve()`` coroutine, then hands both to :func:`main`.
Every loop here is bounded by a count, and the whole shape by the ``--timeout`` deadline.

The fan-out shapes (``fanout-100``, ``fanout`` with 500 clients, ``fanout-5000``) share one
driver and differ in their connections; so do the payload shapes (``payload-100b``,
``payload-10kb``, ``payload-1mb``), which differ in the size of the :class:`Document`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import resource
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from benchmarks.common import (
    PeerArgs,
    clock_ns,
    cpu_seconds,
    parse_peer_args,
    percentile,
    prepare_process,
    process_stats,
    run_loop,
    user_seconds,
)
from benchmarks.payloads import CATALOG, ECHO, Catalog, Document, Echo, ServerStats, Tick, document

__all__ = ("Peer", "main", "run_shape")

C = TypeVar("C")
R = TypeVar("R")

Call = Callable[[R], Awaitable[R]]
OnTick = Callable[[Tick], None]

_OPEN_CONCURRENCY = 50
_MEMORY_WARM_CONNECTIONS = 10
_MEMORY_SETTLE_SECONDS = 1.0
_FANOUT_WARMUP_MESSAGES = 5
_SPARE_FILES = 64
"""File descriptors a client process needs besides its connections (a control connection,
pipes, the event loop's own)."""

PAYLOAD_SIZES = {"payload-100b": 100, "payload-10kb": 10_000, "payload-1mb": 1_000_000}
"""The size of the :class:`Document` (its JSON, in bytes) that each payload shape echoes."""


class Peer(abc.ABC, Generic[C]):
    """The client side of one peer, as the shapes use it; ``C`` is its connection type.

    Args:
        host, port: Where the peer's server listens.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    @abc.abstractmethod
    async def connect(self, on_tick: OnTick | None = None) -> C:
        """Open one connection; ``on_tick`` gets every fan-out message it receives, decoded."""

    @abc.abstractmethod
    def echo(self, conn: C) -> Call[Echo]:
        """The small echo call on ``conn``, the way users of the peer would make it."""

    @abc.abstractmethod
    def echo_large(self, conn: C) -> Call[Catalog]:
        """The large echo call on ``conn``."""

    @abc.abstractmethod
    def echo_document(self, conn: C) -> Call[Document]:
        """The echo call of the payload shapes on ``conn``, for a :class:`Document` of any size."""

    @abc.abstractmethod
    async def stats(self, conn: C, collect: bool = False) -> ServerStats:
        """The server's RSS and CPU time (not timed; may use a connection of its own)."""

    @abc.abstractmethod
    async def start_fanout(self, conn: C, count: int) -> None:
        """Ask the server to push ``count`` ticks to every connection, as fast as it can."""

    @abc.abstractmethod
    async def close(self, conn: C) -> None:
        """Close ``conn``."""

    async def pipeline(self, conn: C, count: int, depth: int) -> None:
        """Make ``count`` echo calls on ``conn`` from ``depth`` concurrent tasks."""
        call = self.echo(conn)
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await call(ECHO)

        await asyncio.gather(*(worker() for _ in range(min(depth, count))))


# -- measuring ----------------------------------------------------------------------------


class _CpuMeter:
    """CPU time of both processes over a measured section, and its user-space part."""

    def __init__(self, peer: Peer[Any], conn: Any) -> None:
        self.peer = peer
        self.conn = conn
        self.server = (0.0, 0.0)
        self.client = (0.0, 0.0)

    async def start(self) -> None:
        stats = await self.peer.stats(self.conn)
        self.server = (stats.cpu, stats.user)
        self.client = (cpu_seconds(), user_seconds())

    async def per_unit(self, units: int) -> dict[str, float]:
        """CPU microseconds per call (or delivery) of each process since :meth:`start`,
        all of it and in user space."""
        client = (cpu_seconds() - self.client[0], user_seconds() - self.client[1])
        stats = await self.peer.stats(self.conn)
        server = (stats.cpu - self.server[0], stats.user - self.server[1])
        each = 1e6 / units
        return {
            "client_cpu_us": client[0] * each,
            "server_cpu_us": server[0] * each,
            "client_user_us": client[1] * each,
            "server_user_us": server[1] * each,
        }


class _Deliveries:
    """Counts fan-out messages arriving on all connections; notes the first and the last."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.first = 0
        self.last = 0
        self.done = asyncio.Event()

    def expect(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first = self.last = 0
        self.done.clear()

    def hit(self, tick: Tick) -> None:
        now = clock_ns()
        if self.count == 0:
            self.first = now
        self.count += 1
        if self.count == self.expected:
            self.last = now
            self.done.set()


async def _open(peer: Peer[C], n: int, on_tick: OnTick | None = None) -> list[C]:
    """Open ``n`` connections, at most ``_OPEN_CONCURRENCY`` handshakes at a time.

    Raises:
        RuntimeError: the process may not open that many files (``RLIMIT_NOFILE``, raised
            to its hard limit by :func:`~benchmarks.common.prepare_process`).
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n + _SPARE_FILES:
        raise RuntimeError(
            f"{n} connections need about {n + _SPARE_FILES} file descriptors, but RLIMIT_NOFILE "
            f"is {soft} (raise the hard limit: ulimit -Hn)"
        )
    gate = asyncio.Semaphore(_OPEN_CONCURRENCY)

    async def one() -> C:
        async with gate:
            return await peer.connect(on_tick)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def _close_all(peer: Peer[C], conns: Sequence[C]) -> None:
    """Close ``conns``, giving up after 10 s (the process is about to exit anyway)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            await asyncio.gather(*(peer.close(conn) for conn in conns), return_exceptions=True)


async def _check(call: Call[R], request: R) -> None:
    reply = await call(request)
    if reply != request:
        raise AssertionError(f"the echo came back different: {reply!r}")


async def _repeat(call: Call[R], request: R, count: int) -> None:
    for _ in range(count):
        await call(request)


async def _repeat_timed(call: Call[R], request: R, count: int, latencies: list[int]) -> None:
    """``count`` sequential calls, each one's latency in nanoseconds appended to ``latencies``."""
    for _ in range(count):
        sent = clock_ns()
        await call(request)
        latencies.append(clock_ns() - sent)


def _rate(units: int, elapsed_ns: int) -> dict[str, float]:
    seconds = elapsed_ns / 1e9
    return {"units": units, "seconds": seconds, "rate": units / seconds}


def _percentiles(latencies: list[int]) -> dict[str, float]:
    """p50 and p99 of ``latencies`` (nanoseconds, sorted here), in microseconds."""
    latencies.sort()
    return {"p50_us": percentile(latencies, 50) / 1e3, "p99_us": percentile(latencies, 99) / 1e3}


async def _timed_calls(peer: Peer[C], conn: C, call: Call[R], request: R, args: PeerArgs) -> dict[str, Any]:
    """``args.count`` sequential calls, each one timed."""
    await _check(call, request)
    await _repeat(call, request, args.warmup)
    meter = _CpuMeter(peer, conn)
    await meter.start()
    latencies = [0] * args.count
    start = clock_ns()
    for i in range(args.count):
        sent = clock_ns()
        await call(request)
        latencies[i] = clock_ns() - sent
    elapsed = clock_ns() - start
    cpu = await meter.per_unit(args.count)
    return {**_rate(args.count, elapsed), **_percentiles(latencies), **cpu}


# -- the shapes -----------------------------------------------------------------------------


async def sequential(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """One connection, one small call in flight."""
    conn = await peer.connect()
    try:
        return await _timed_calls(peer, conn, peer.echo(conn), ECHO, args)
    finally:
        await _close_all(peer, [conn])


async def large(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """One connection, one ~16 KB call in flight."""
    conn = await peer.connect()
    try:
        return await _timed_calls(peer, conn, peer.echo_large(conn), CATALOG, args)
    finally:
        await _close_all(peer, [conn])


async def payload(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """One connection, one :class:`Document` of the shape's size (:data:`PAYLOAD_SIZES`) in
    flight."""
    request = document(PAYLOAD_SIZES[args.shape])
    conn = await peer.connect()
    try:
        return await _timed_calls(peer, conn, peer.echo_document(conn), request, args)
    finally:
        await _close_all(peer, [conn])


async def pipelined(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """One connection, ``depth`` small calls in flight."""
    conn = await peer.connect()
    try:
        await _check(peer.echo(conn), ECHO)
        await peer.pipeline(conn, args.warmup, args.depth)
        meter = _CpuMeter(peer, conn)
        await meter.start()
        start = clock_ns()
        await peer.pipeline(conn, args.count, args.depth)
        elapsed = clock_ns() - start
        return {**_rate(args.count, elapsed), **await meter.per_unit(args.count)}
    finally:
        await _close_all(peer, [conn])


async def many(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """``connections`` connections, each making ``count`` sequential small calls."""
    conns = await _open(peer, args.connections)
    try:
        calls = [peer.echo(conn) for conn in conns]
        await asyncio.gather(*(_check(call, ECHO) for call in calls))
        await asyncio.gather(*(_repeat(call, ECHO, args.warmup) for call in calls))
        meter = _CpuMeter(peer, conns[0])
        await meter.start()
        start = clock_ns()
        await asyncio.gather(*(_repeat(call, ECHO, args.count) for call in calls))
        elapsed = clock_ns() - start
        total = args.count * len(conns)
        return {**_rate(total, elapsed), **await meter.per_unit(total)}
    finally:
        await _close_all(peer, conns)


async def crowd(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """``connections`` connections, each making ``count`` sequential small calls at the same
    time, every call timed: the latency a client sees on a busy server."""
    conns = await _open(peer, args.connections)
    try:
        calls = [peer.echo(conn) for conn in conns]
        await asyncio.gather(*(_check(call, ECHO) for call in calls))
        await asyncio.gather(*(_repeat(call, ECHO, args.warmup) for call in calls))
        total = args.count * len(conns)
        latencies: list[int] = []
        meter = _CpuMeter(peer, conns[0])
        await meter.start()
        start = clock_ns()
        await asyncio.gather(*(_repeat_timed(call, ECHO, args.count, latencies) for call in calls))
        elapsed = clock_ns() - start
        cpu = await meter.per_unit(total)
        return {**_rate(total, elapsed), **_percentiles(latencies), **cpu}
    finally:
        await _close_all(peer, conns)


async def fanout(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """``connections`` clients; the server pushes ``count`` ticks to all of them."""
    deliveries = _Deliveries()
    conns = await _open(peer, args.connections, deliveries.hit)
    try:
        deliveries.expect(len(conns) * _FANOUT_WARMUP_MESSAGES)
        await peer.start_fanout(conns[0], _FANOUT_WARMUP_MESSAGES)
        await deliveries.done.wait()
        meter = _CpuMeter(peer, conns[0])
        await meter.start()
        total = len(conns) * args.count
        deliveries.expect(total)
        await peer.start_fanout(conns[0], args.count)
        await deliveries.done.wait()
        cpu = await meter.per_unit(total)
        return {**_rate(total, deliveries.last - deliveries.first), **cpu}
    finally:
        await _close_all(peer, conns)


async def memory(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """The server's RSS growth per idle connection, over ``count`` connections."""
    control = await peer.connect()
    warm = await _open(peer, _MEMORY_WARM_CONNECTIONS)
    conns: list[Any] = []
    try:
        await asyncio.sleep(_MEMORY_SETTLE_SECONDS)
        before = await peer.stats(control, collect=True)
        client_before = process_stats(collect=True).rss
        conns = await _open(peer, args.count)
        await asyncio.sleep(_MEMORY_SETTLE_SECONDS)
        after = await peer.stats(control, collect=True)
        client_after = process_stats(collect=True).rss
        return {
            "units": args.count,
            "rss_before": before.rss,
            "rss_after": after.rss,
            "kb_per_conn": (after.rss - before.rss) / args.count / 1024,
            "client_kb_per_conn": (client_after - client_before) / args.count / 1024,
        }
    finally:
        await _close_all(peer, [control, *warm, *conns])


SHAPE_DRIVERS: dict[str, Callable[[Peer[Any], PeerArgs], Awaitable[dict[str, Any]]]] = {
    "sequential": sequential,
    "pipelined": pipelined,
    "many": many,
    "crowd": crowd,
    "fanout-100": fanout,
    "fanout": fanout,
    "fanout-5000": fanout,
    "large": large,
    **dict.fromkeys(PAYLOAD_SIZES, payload),
    "memory": memory,
}


async def run_shape(peer: Peer[Any], args: PeerArgs) -> dict[str, Any]:
    """Run ``args.shape`` against ``peer`` within ``args.timeout`` seconds."""
    async with asyncio.timeout(args.timeout):
        return await SHAPE_DRIVERS[args.shape](peer, args)


# -- the entry point of a peer module ------------------------------------------------------------


async def _serve(serve: Callable[[], Awaitable[int]]) -> None:
    port = await serve()
    print(port, flush=True)
    await asyncio.Event().wait()  # until the orchestrator terminates the process


async def _client(make: Callable[[str, int], Peer[Any]], args: PeerArgs) -> dict[str, Any]:
    return await run_shape(make("127.0.0.1", args.port), args)


def main(serve: Callable[[], Awaitable[int]], client: Callable[[str, int], Peer[Any]]) -> None:
    """Run the side of a peer that ``sys.argv`` asks for.

    Args:
        serve: Starts the peer's server on 127.0.0.1, port 0, and returns the real port.
        client: Makes the peer's :class:`Peer` for a host and port.
    """
    args = parse_peer_args(sys.argv[1:])
    prepare_process(args.cpu)
    if args.side == "server":
        run_loop(_serve(serve), args.loop)
    else:
        result = run_loop(_client(client, args), args.loop)
        print(json.dumps(result), flush=True)
