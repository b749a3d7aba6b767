"""The server process of ``python -m benchmarks.flood``: a small contract served by grestws.

``python -m benchmarks.flood_app [--rate default|off] [--loop asyncio|uvloop] [--tracemalloc]``
listens on 127.0.0.1 with an ephemeral port and prints the port on the first stdout line.
Then it prints one JSON object a line, each with ``t`` (``time.monotonic()``, the same
clock in every process on the machine):

- ``open`` / ``closed``: a connection got past the handshake / closed (code, reason);
  ``role`` is the handshake header ``x-role`` (the attacker sends ``attacker``).
- ``released``: a closed connection left the server's books (its calls ended too).
- ``incident``: the limits closed a peer (``slow_consumer``, ``policy_close``, ``dead_peer``).
- ``diag`` every 100 ms: tasks, live connections, their unwritten bytes and calls in
  flight, incident counts, RSS, CPU seconds used, seconds spent waiting for a CPU (``runq``),
  how late the loop ran the report (``lag``), and the bytes tracemalloc traces (with
  ``--tracemalloc``).
- ``top`` (with ``--tracemalloc``): the largest allocation sites, taken at a new high of
  traced memory, at most twice a second.

``--rate off`` serves with ``grestws.Limits(rate=None, identity_rate=None)``, so that the
in-flight cap and the outgoing-buffer bound alone hold a flood; the default serves with
the default limits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import sys
import time
import tracemalloc
from typing import Any, Protocol

import msgspec
import psutil

import grestws
from benchmarks.common import LOOPS, run_loop

__all__ = ("FloodApi", "FloodClient", "FloodServer", "Payload", "Stats", "make_app")

SLOW_SECONDS = 0.02
"""How long ``slow`` sleeps."""

_CLOSING_KINDS = {"slow_consumer", "policy_close", "dead_peer"}


class Payload(msgspec.Struct):
    """What ``echo`` and ``slow`` take and give back."""

    seq: int
    text: str


class Stats(msgspec.Struct):
    """The server process as it sees itself."""

    rss: int
    max_rss: int
    tasks: int
    live: int


class StatsRequest(msgspec.Struct):
    pass


class FloodServer(Protocol):
    """What clients call."""

    @grestws.request
    async def echo(self, req: Payload) -> Payload:
        """Answer with the request."""
        ...

    @grestws.request
    async def slow(self, req: Payload) -> Payload:
        """Answer with the request after a short sleep."""
        ...

    @grestws.request
    async def stats(self, req: StatsRequest) -> Stats:
        """The server's RSS, peak RSS, task count and live connections."""
        ...


class FloodClient(Protocol):
    """The server calls nothing on its clients."""


FloodApi = grestws.SocketContract("Flood", client_to_server=FloodServer, server_to_client=FloodClient).at(
    "/flood"
)

_server: grestws.Server | None = None
_process = psutil.Process()
_background: set[asyncio.Task[None]] = set()


def emit(event: str, **fields: Any) -> None:
    """Print one event line for the orchestrator."""
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


class FloodHandler(FloodServer):
    def __init__(self, conn: grestws.ServerConnection[FloodClient]) -> None:
        self.conn = conn
        role = conn.handshake_headers.get("x-role", "client")
        emit("open", conn=conn.id, role=role)
        conn.on_close(lambda code, reason: self._closed(role, code, reason))

    def _closed(self, role: str, code: int | None, reason: str) -> None:
        emit("closed", conn=self.conn.id, role=role, code=code, reason=reason)
        task = asyncio.get_running_loop().create_task(_watch_release(self.conn, role))
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def echo(self, req: Payload) -> Payload:
        return req

    async def slow(self, req: Payload) -> Payload:
        await asyncio.sleep(SLOW_SECONDS)
        return req

    async def stats(self, req: StatsRequest) -> Stats:
        return Stats(
            rss=_process.memory_info().rss,
            max_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            tasks=len(asyncio.all_tasks()),
            live=len(_live()),
        )


def _live() -> set[Any]:
    # The connections the App still holds, closed or not.
    return set(_server.app.connections) if _server is not None else set()


async def _watch_release(conn: grestws.ServerConnection[FloodClient], role: str) -> None:
    """Tell when a closed connection has left the server's books (bounded: 60 s)."""
    for _ in range(6000):
        if conn not in _live():
            emit("released", conn=conn.id, role=role)
            return
        await asyncio.sleep(0.01)


def _runqueue_seconds() -> float:
    """Seconds the event loop's thread was ready to run but waited for a CPU (Linux; else 0):
    what other processes on the machine cost the server."""
    try:
        with open("/proc/thread-self/schedstat") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def _on_error(incident: grestws.Incident) -> None:
    kind = incident.kind.value
    if kind in _CLOSING_KINDS:
        conn = incident.connection
        emit("incident", kind=kind, conn=conn.id if conn is not None else "", message=incident.message)


def make_app(rate: str) -> grestws.App:
    """The App with the default limits, or (``rate="off"``) without the rate limits."""
    limits = grestws.Limits() if rate == "default" else grestws.Limits(rate=None, identity_rate=None)
    app = grestws.App(limits=limits, on_error=_on_error)
    app.add(FloodApi, FloodHandler)
    return app


async def _diag(app: grestws.App, trace: bool) -> None:
    """Print the server's state every 100 ms; with ``trace`` also the top allocation sites
    whenever traced memory reaches a new high (at most twice a second)."""
    high = 0
    last_top = 0.0
    lag = 0.0
    while True:
        live = _live()
        traced = tracemalloc.get_traced_memory()[0] if trace else 0
        emit(
            "diag",
            tasks=len(asyncio.all_tasks()),
            live=len(live),
            buffered=sum(conn.buffered for conn in live if conn.is_open),
            in_flight=sum(conn.in_flight for conn in live),
            rss=_process.memory_info().rss,
            cpu=sum(_process.cpu_times()[:2]),
            runq=_runqueue_seconds(),
            lag=lag,
            traced=traced,
            incidents={k.value: n for k, n in app.incidents.counts.items() if n},
        )
        now = time.monotonic()
        if trace and traced > high * 1.05 and now - last_top >= 0.5:
            high, last_top = traced, now
            snapshot = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__),)
            )
            emit(
                "top",
                traced=traced,
                sites=[
                    {"where": str(stat.traceback[0]), "size": stat.size, "count": stat.count}
                    for stat in snapshot.statistics("lineno")[:12]
                ],
            )
        asked = time.monotonic()
        await asyncio.sleep(0.1)
        lag = time.monotonic() - asked - 0.1


async def serve(rate: str, trace: bool) -> None:
    global _server
    app = make_app(rate)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _server = await grestws.serve(app, "127.0.0.1", 0)
    print(_server.port, flush=True)
    diag = loop.create_task(_diag(app, trace))
    try:
        await stop.wait()
    finally:
        diag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await diag
        await _server.close(timeout=1.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the server of benchmarks.flood")
    parser.add_argument("--rate", choices=("default", "off"), default="default")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocations (slow)")
    args = parser.parse_args(argv)
    if args.tracemalloc:
        tracemalloc.start(1)
    try:
        run_loop(serve(args.rate, args.tracemalloc), args.loop)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
