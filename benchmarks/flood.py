"""A flood from one peer that never reads: what it costs the server and its other clients.

Run it from the repository root::

    .venv/bin/python -m benchmarks.flood                  # both scenarios, ~30 s
    .venv/bin/python -m benchmarks.flood --loop uvloop    # every process on uvloop
    .venv/bin/python -m benchmarks.flood --scenario no-rate --tracemalloc   # where memory goes

(``--help`` lists the options.) It is a stress script, not a test: it prints figures and
PASS/FAIL against the targets, and exits 0 unless something crashed.

For each scenario it starts a server process (``benchmarks.flood_app``, 127.0.0.1, an
ephemeral port it reads back from the child's first stdout line, the allocator setting of
the other benchmarks) and then:

1. **Baseline.** A bystander, a plain grestws client (``grestws.connect``, typed proxy),
   makes ``--calls`` sequential ``echo`` calls, at most ``--rate`` a second (the default
   limits refuse, then close, a connection calling faster than 1,000 a second); their
   p50/p99 latency is the reference. The server's RSS (psutil on its pid) is taken before.
2. **Attack.** An attacker process opens a raw websockets connection, sends
   ``h:::{"x-role":"attacker"}``, reads ``k:::null`` and from then on reads nothing
   (``max_queue=1``: websockets stops reading the socket once one message waits). It
   sends ``--requests`` ``r`` echo frames (about 110 bytes each, unique ids), framed by
   websockets beforehand and written in batches, as fast as the server takes them; then
   it stays connected without reading for at most ``--hold`` seconds (less if the server
   drops the TCP connection first: then it reads what is left, to see the close frame),
   and aborts its socket. Meanwhile the bystander makes the same calls again and the
   server's RSS is sampled every 50 ms.
3. **After.** Once the server has released the attacker's connection, its RSS is taken
   again.

Scenarios: ``default`` (the default limits) and ``no-rate`` (``Limits(rate=None,
identity_rate=None)``: only the in-flight cap and the outgoing-buffer bound hold memory).

The table gives the server's RSS before / peak / after and its growth (peak - before);
the bystander's p50/p99 alone and with the attacker over all its calls, and their p99
ratio; the p99 of only the calls made while the server held the attacker's connection
("in window", most of the calls come after it); and how the attacker's connection ended:
the code of the limit that closed it and when the server decided so, when the connection
was gone, and what the attacker saw. Targets (from the issue): RSS growth under 32 MB,
bystander p99 within 2x of its value alone.

The detail lines come from the server's own reports (see ``benchmarks/flood_app.py``):
the most tasks, calls in flight and unwritten bytes it held, incident counts, and for the
time before and after the close decision how much the server ran, how much it waited for
a CPU taken by other processes, and how late its loop ran. ``--tracemalloc`` also prints
where the server's traced memory was at its highest (the server runs much slower then,
so the latencies mean nothing in that mode).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import psutil
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import grestws
from benchmarks.common import LOOPS, PEER_ENV, ROOT, percentile, run_loop
from benchmarks.flood_app import FloodApi, Payload, StatsRequest

MB = 1 << 20
GROWTH_TARGET_MB = 32.0
P99_TARGET_RATIO = 2.0
SCENARIOS = {"default": "default", "no-rate": "off"}
"""Scenario name: the server's ``--rate`` flag."""
OVERALL_SECONDS = 115.0
"""The whole script gives up after this long."""
TEXT = "x" * 70
"""The padding of every echo payload: frames of about 100 bytes."""
_BATCH = 500
"""Frames the attacker writes at once."""
_TCP_ESTABLISHED = 1
_TCP_STATES = {1: "established", 7: "closed (reset)", 8: "close-wait (FIN received)"}


class FloodError(Exception):
    """A process failed or did not answer in time."""


# -- the attacker (a process of its own: its CPU use must not stall the bystander) ----------


def _say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


def _tcp_state(sock: Any) -> int | None:
    """The kernel's TCP state of ``sock`` (1 established), read without reading any data."""
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0])
    except (OSError, AttributeError, TypeError, ValueError):
        return None


async def attack(port: int, requests: int, hold: float, method: str, budget: float) -> None:
    """Flood ``port`` with ``requests`` requests without ever reading the answers.

    The frames are made by websockets (masked, as a client must) before the flood starts
    and written in batches, so the attacker spends almost no CPU while it floods: as an
    attacker on another machine would, it costs the server's machine nothing but the
    server's own work, and it sends as fast as the server takes the bytes.
    """
    ws = await asyncio.wait_for(
        ws_connect(
            f"ws://127.0.0.1:{port}/flood",
            max_queue=1,  # one unread message and websockets stops reading the socket
            ping_interval=None,  # no keepalive: it would need the pongs read
            compression=None,
            close_timeout=1.0,
            max_size=None,
        ),
        10.0,
    )
    sock = ws.transport.get_extra_info("socket")
    await ws.send('h:::{"x-role":"attacker"}')
    accepted = await asyncio.wait_for(ws.recv(), 5.0)  # the last read until the attacker leaves
    if not str(accepted).startswith("k:"):
        raise FloodError(f"handshake refused: {accepted!r:.200}")
    batches: list[bytes] = []
    for first in range(1, requests + 1, _BATCH):
        for i in range(first, min(first + _BATCH, requests + 1)):
            ws.protocol.send_text(
                b'r:Flood.%b:%d:{"seq":%d,"text":"%b"}' % (method.encode(), i, i, TEXT.encode())
            )
        batches.append(b"".join(ws.protocol.data_to_send()))
    _say("ready", frame_bytes=len(batches[0]) // min(_BATCH, requests), bytes=sum(map(len, batches)))
    start = time.monotonic()
    sent = 0
    send_error: dict[str, Any] | None = None
    for batch in batches:
        if ws.transport.is_closing() or time.monotonic() - start > budget:
            send_error = {"code": 1006, "reason": "the connection was lost while sending", "frame": False}
            break
        ws.transport.write(batch)
        sent = min(sent + _BATCH, requests)
        try:
            await ws.drain()  # waits while the kernel's buffers are full: the server reads slower
        except Exception as exc:  # the connection was lost (reset by the server)
            send_error = {"code": 1006, "reason": repr(exc), "frame": False}
            break
    _say("flooded", sent=sent, seconds=time.monotonic() - start, error=send_error)

    # Stay without reading, until the server drops the TCP connection or the time is up.
    dropped_at = None
    state = _tcp_state(sock)
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        state = _tcp_state(sock)
        if state != _TCP_ESTABLISHED:
            dropped_at = time.monotonic()
            break
        await asyncio.sleep(0.05)
    # If the server has let go, read what is left, to see its close frame (bounded).
    replies: dict[str, int] = {}
    close: dict[str, Any] | None = send_error
    if dropped_at is not None:
        read_close, replies = await _read_rest(ws, deadline=time.monotonic() + 3.0)
        close = read_close or close
    ws.transport.abort()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.wait_closed(), 2.0)
    _say(
        "left",
        dropped_at=dropped_at,
        tcp_state=_TCP_STATES.get(state or 0, str(state)),
        close=close,
        replies=replies,
    )


def _closed(exc: ConnectionClosed) -> dict[str, Any]:
    if exc.rcvd is not None:
        return {"code": exc.rcvd.code, "reason": exc.rcvd.reason, "frame": True}
    return {"code": 1006, "reason": str(exc.__cause__ or "no close frame"), "frame": False}


async def _read_rest(ws: Any, deadline: float) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """Read until the close (at most until ``deadline``); count the replies by kind."""
    replies: dict[str, int] = {}
    for _ in range(1_000_000):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, replies
        try:
            message = await asyncio.wait_for(ws.recv(), remaining)
        except ConnectionClosed as exc:
            return _closed(exc), replies
        except TimeoutError:
            return None, replies
        text = message if isinstance(message, str) else message.decode(errors="replace")
        kind = "ok" if '"success":true' in text else text.partition('"type":"')[2].partition('"')[0]
        replies[kind or "other"] = replies.get(kind or "other", 0) + 1
    return None, replies


# -- the orchestrator -----------------------------------------------------------------------


@dataclass
class Child:
    """A process of ours whose stdout lines are JSON events (the server's first is its port)."""

    process: asyncio.subprocess.Process
    stderr: IO[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(cls, args: Sequence[str]) -> Child:
        stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, env=PEER_ENV, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
        return cls(process, stderr)

    async def first_line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            raise FloodError(f"no output within {timeout:g} s: {self.tail()}") from None
        if not line:
            raise FloodError(f"exited with {await self.process.wait()}: {self.tail()}")
        return line.decode()

    def read_events(self) -> None:
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            with contextlib.suppress(json.JSONDecodeError):
                self.events.append(json.loads(line))
                self.changed.set()
        self.changed.set()

    async def wait_for(self, timeout: float, **match: Any) -> dict[str, Any] | None:
        """The first event with these fields, waiting at most ``timeout`` s for it."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.reader is not None and self.reader.done()):
                return None
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    def tail(self, chars: int = 1500) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-chars:].strip() or "(nothing on stderr)"

    async def stop(self) -> None:
        """Terminate the process (kill it if it lingers) and stop reading it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        self.stderr.close()


@dataclass
class Calls:
    """The bystander's calls: when each started and how long it took (ns)."""

    starts: list[float] = field(default_factory=list)
    latencies: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    waited: float = 0.0
    """The share of the measurement this process spent waiting for a CPU (Linux)."""

    def p(self, q: float) -> float:
        """The ``q``-th percentile in ms."""
        values = sorted(self.latencies)
        return percentile(values, q) / 1e6 if values else float("nan")

    def during(self, start: float, end: float) -> list[int]:
        return [lat for t, lat in zip(self.starts, self.latencies, strict=True) if start <= t <= end]


async def bystander(client: Any, calls: int, rate: float, budget: float) -> Calls:
    """``calls`` sequential echo calls, each started at least ``1 / rate`` s after the one
    before; stops early after ``budget`` seconds or when the connection closes.

    The default limits answer a connection's calls past 1,000 a second TOO_MANY_REQUESTS
    and close it with 1008 if it keeps on, so a bystander calling back to back would be
    closed by the limits themselves. Nor does it catch up after slow answers (a burst at
    full speed would run into the same limit): the gap between starts is a minimum.
    """
    out = Calls()
    start = time.monotonic()
    runq = _runqueue_seconds()
    echo = client.outgoing.echo
    gap = 1.0 / rate
    last = -math.inf
    for seq in range(calls):
        now = time.monotonic()
        if now - start > budget:
            out.errors["out of time"] = calls - seq
            break
        if (wait := last + gap - now) > 0:
            await asyncio.sleep(wait)
        last = time.monotonic()
        out.starts.append(last)
        began = time.perf_counter_ns()
        try:
            await echo(Payload(seq, TEXT))
        except grestws.ConnectionClosedError as exc:
            out.errors[f"closed {exc}"] = calls - seq
            break
        except (grestws.GrestwsError, TimeoutError) as exc:
            name = f"{type(exc).__name__}: {exc}"[:80]
            out.errors[name] = out.errors.get(name, 0) + 1
        out.latencies.append(time.perf_counter_ns() - began)
    out.waited = (_runqueue_seconds() - runq) / max(time.monotonic() - start, 1e-9)
    return out


def _runqueue_seconds() -> float:
    """Seconds this thread was ready to run but waited for a CPU (Linux; else 0)."""
    try:
        with open("/proc/thread-self/schedstat") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def _rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


async def _steady_rss(pid: int, samples: int = 3) -> int:
    values = []
    for _ in range(samples):
        values.append(_rss(pid))
        await asyncio.sleep(0.05)
    return int(statistics.median(values))


def _kernel_tcp() -> tuple[int, int]:
    """Machine-wide: orphaned TCP sockets (closed by their process, not yet by TCP) and the
    bytes of TCP buffers, from /proc/net/sockstat ((0, 0) where there is none). A server
    that drops a peer leaves what the peer did not read to the kernel, out of its RSS."""
    try:
        with open("/proc/net/sockstat") as stats:
            for line in stats:
                if line.startswith("TCP:"):
                    fields = line.split()
                    values = dict(zip(fields[1::2], fields[2::2], strict=False))
                    return int(values.get("orphan", 0)), int(values.get("mem", 0)) * 4096
    except (OSError, ValueError):
        pass
    return 0, 0


@dataclass
class Samples:
    """The server's RSS every 50 ms, and the kernel's TCP figures at the same times."""

    rss: list[int] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    tcp_mem: list[int] = field(default_factory=list)


async def _sample(pid: int, into: Samples, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        into.rss.append(_rss(pid))
        orphans, tcp_mem = _kernel_tcp()
        into.orphans.append(orphans)
        into.tcp_mem.append(tcp_mem)
        await asyncio.sleep(0.05)


@dataclass
class Result:
    scenario: str
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    alone: Calls = field(default_factory=Calls)
    attacked: Calls = field(default_factory=Calls)
    attacker: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: list[dict[str, Any]] = field(default_factory=list)
    max_rss_before: int = 0
    max_rss_after: int = 0
    tcp_before: tuple[int, int] = (0, 0)
    tcp_peak: tuple[int, int] = (0, 0)
    tcp_after: tuple[int, int] = (0, 0)

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_before

    @property
    def ratio(self) -> float:
        alone = self.alone.p(99)
        return self.attacked.p(99) / alone if alone > 0 else float("nan")

    @property
    def passed(self) -> tuple[bool, bool]:
        return self.growth / MB < GROWTH_TARGET_MB, self.ratio <= P99_TARGET_RATIO

    @property
    def window(self) -> list[int]:
        """The latencies of the bystander's calls made while the server held the attacker's
        connection (from its handshake until it was released)."""
        opened = self.server_event("open", role="attacker")
        if opened is None:
            return []
        released = self.server_event("released", conn=opened["conn"])
        return self.attacked.during(opened["t"], released["t"] if released is not None else math.inf)

    def server_event(self, event: str, **match: Any) -> dict[str, Any] | None:
        for item in self.server:
            if item.get("event") == event and all(item.get(k) == v for k, v in match.items()):
                return item
        return None


async def scenario(name: str, opts: argparse.Namespace) -> Result:
    """Run one scenario against a server of its own, which is always stopped."""
    result = Result(name)
    server_args = ["-m", "benchmarks.flood_app", "--rate", SCENARIOS[name], "--loop", opts.loop]
    if opts.tracemalloc:
        server_args.append("--tracemalloc")
    server = await Child.start(server_args)
    attacker: Child | None = None
    sampler: asyncio.Task[None] | None = None
    try:
        line = await server.first_line(15.0)
        if not line.strip().isdigit():
            raise FloodError(f"the server printed {line!r:.200}, not its port")
        port = int(line)
        server.read_events()
        pid = server.process.pid
        async with grestws.connect(f"ws://127.0.0.1:{port}", FloodApi, timeout=10.0) as client:
            await bystander(client, min(500, opts.calls), opts.rate, 15.0)  # warm up both sides
            result.max_rss_before = await _max_rss(client)
            result.rss_before = await _steady_rss(pid)
            result.alone = await bystander(client, opts.calls, opts.rate, 20.0)

            result.tcp_before = _kernel_tcp()
            samples = Samples()
            sampler = asyncio.get_running_loop().create_task(_sample(pid, samples, 60.0))
            attacker = await Child.start(
                [
                    *("-m", "benchmarks.flood", "--attacker", str(port), "--requests", str(opts.requests)),
                    *("--hold", str(opts.hold), "--method", opts.method, "--loop", opts.loop),
                ]
            )
            attacker.read_events()
            if await attacker.wait_for(15.0, event="ready") is None:
                raise FloodError(f"the attacker did not get past the handshake: {attacker.tail()}")
            result.attacked = await bystander(client, opts.calls, opts.rate, 20.0)
            left = await attacker.wait_for(opts.hold + 40.0, event="left")
            if left is None:
                raise FloodError(f"the attacker did not finish: {attacker.tail()}")
            await attacker.stop()
            result.attacker = {e["event"]: e for e in attacker.events}
            opened = await server.wait_for(1.0, event="open", role="attacker")
            if opened is not None:
                await server.wait_for(15.0, event="released", conn=opened["conn"])
            await asyncio.sleep(0.5)
            result.rss_after = await _steady_rss(pid)
            sampler.cancel()
            result.rss_peak = max([*samples.rss, result.rss_after])
            result.tcp_peak = (max(samples.orphans, default=0), max(samples.tcp_mem, default=0))
            result.tcp_after = _kernel_tcp()
            result.max_rss_after = await _max_rss(client)
        result.server = list(server.events)
        return result
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        if attacker is not None:
            await attacker.stop()
        await server.stop()


async def _max_rss(client: Any) -> int:
    """The server's peak RSS as it reports it (0 if the bystander cannot ask any more)."""
    try:
        stats = await client.outgoing.stats(StatsRequest())
    except grestws.GrestwsError:
        return 0
    return int(stats.max_rss)


# -- the report -----------------------------------------------------------------------------


_CLOSE_CODES = {"policy_close": 1008, "slow_consumer": 1013, "dead_peer": 1011}


def _ended(r: Result) -> str:
    """How the attacker's connection ended, in a few words: the code the server closed it
    with and when it decided to, when the connection was gone, what the attacker saw."""
    opened = r.server_event("open", role="attacker")
    if opened is None:
        return "never opened?"
    conn = opened["conn"]
    flood = r.attacker.get("ready", {}).get("t", opened["t"])
    decided, closed = r.server_event("incident", conn=conn), r.server_event("closed", conn=conn)
    why = "no limit hit"
    if decided is not None:
        why = f"{_CLOSE_CODES.get(decided['kind'], decided['kind'])} at +{decided['t'] - flood:.2f}s"
    gone = f"gone +{closed['t'] - flood:.2f}s ({closed['code']})" if closed is not None else "still open"
    seen = r.attacker.get("left", {}).get("close") or {}
    saw = f"{seen.get('code')}{'' if seen.get('frame') else ' no frame'}" if seen else "nothing"
    return f"{why}, {gone}; saw {saw}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(results: list[Result], opts: argparse.Namespace) -> None:
    header = (
        f"{'scenario':<9} {'RSS MB before/peak/after':>24} {'growth':>6} "
        f"{'ms alone p50/p99':>16} {'attacked p50/p99':>16} {'p99x':>5} {'in window n p99/max (x)':>26}  "
        f"{'attacker: closed with, gone, saw':<42} verdict"
    )
    print()
    print(
        f"flood: {opts.requests} {opts.method} requests from a peer that never reads; "
        f"bystander {opts.calls} calls at most {opts.rate:g}/s; loop {opts.loop}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        mem_ok, p99_ok = r.passed
        window = sorted(r.window)
        window_ratio = float("nan")
        in_window = "-"
        if window:
            p99 = percentile(window, 99) / 1e6
            window_ratio = p99 / r.alone.p(99) if r.alone.p(99) > 0 else float("nan")
            in_window = f"{len(window)} {p99:.2f}/{window[-1] / 1e6:.0f} ({window_ratio:.1f}x)"
        verdict = f"{_verdict(mem_ok)} mem, {_verdict(p99_ok)} p99"
        if window:
            verdict += f" ({_verdict(window_ratio <= P99_TARGET_RATIO)} in window)"
        rss = f"{r.rss_before / MB:.1f}/{r.rss_peak / MB:.1f}/{r.rss_after / MB:.1f}"
        alone = f"{r.alone.p(50):.3f}/{r.alone.p(99):.3f}"
        attacked = f"{r.attacked.p(50):.3f}/{r.attacked.p(99):.3f}"
        print(
            f"{r.scenario:<9} {rss:>24} {r.growth / MB:>6.1f} {alone:>16} {attacked:>16} "
            f"{r.ratio:>5.2f} {in_window:>26}  {_ended(r):<42} {verdict}"
        )
    print(
        f"targets: RSS growth (peak - before) < {GROWTH_TARGET_MB:g} MB; bystander p99 with the attacker "
        f"<= {P99_TARGET_RATIO:g}x its p99 alone (all {opts.calls} calls; 'in window': only the calls "
        "made while the server held the attacker's connection, with the slowest in ms)"
    )
    for r in results:
        _details(r)


def _usage_at(diags: list[dict[str, Any]], t: float) -> dict[str, Any] | None:
    """The server's last report up to ``t``."""
    before = [d for d in diags if d["t"] <= t]
    return before[-1] if before else None


def _cpu_windows(r: Result, conn: str, opened: float, flood: float) -> None:
    """From the attacker's handshake to the close decision, and from the decision to the end
    of the connection: the share of a core the server used and the share it spent waiting
    for one (other processes), the most its loop ran late, and the bystander's latency."""
    diags = [d for d in r.server if d["event"] == "diag"]
    decided, closed = r.server_event("incident", conn=conn), r.server_event("closed", conn=conn)
    marks = [("handshake", opened)]
    if decided is not None:
        marks.append(("close decided", decided["t"]))
    if closed is not None:
        marks.append(("closed", closed["t"]))
    for (name, start), (end_name, end) in itertools.pairwise(marks):
        a, b = _usage_at(diags, start), _usage_at(diags, end + 0.1)
        usage = "server usage unknown"
        if a is not None and b is not None and b["t"] > a["t"]:
            wall = b["t"] - a["t"]
            lag = max(d["lag"] for d in diags if a["t"] < d["t"] <= b["t"])
            usage = (
                f"server ran {(b['cpu'] - a['cpu']) / wall:.0%} of the time, waited for a CPU "
                f"{(b['runq'] - a['runq']) / wall:.0%}, loop late by up to {lag * 1000:.0f} ms"
            )
        during = sorted(r.attacked.during(start, end))
        calls = f"{len(during)} calls, p99 {percentile(during, 99) / 1e6:.2f} ms" if during else "no calls"
        print(
            f"  +{start - flood:5.2f}s..+{end - flood:5.2f}s {name} to {end_name}: {usage}; bystander {calls}"
        )


def _details(r: Result) -> None:
    print(f"\n[{r.scenario}]")
    ready, flooded, left = (r.attacker.get(k, {}) for k in ("ready", "flooded", "left"))
    if flooded:
        rate = flooded["sent"] / flooded["seconds"] if flooded["seconds"] > 0 else 0.0
        stop = f"; its sends failed: {flooded['error']}" if flooded.get("error") else ""
        print(
            f"  attacker: sent {flooded['sent']} frames of {ready.get('frame_bytes')} B in "
            f"{flooded['seconds']:.2f} s ({rate:,.0f}/s){stop}"
        )
    if left:
        dropped = left.get("dropped_at")
        when = f"+{dropped - ready['t']:.2f}s" if dropped and ready else "never (attacker left)"
        print(
            f"  attacker: TCP dropped by the server {when} ({left.get('tcp_state')}); "
            f"then read {left.get('replies') or 'nothing'}; close seen: {left.get('close')}"
        )
    opened = r.server_event("open", role="attacker")
    if opened is not None:
        conn, flood = opened["conn"], ready.get("t", opened["t"])
        for event in ("incident", "closed", "released"):
            e = r.server_event(event, conn=conn)
            if e is not None:
                what = {k: v for k, v in e.items() if k not in ("event", "t", "conn", "role")}
                print(f"  server: {event:<8} at +{e['t'] - flood:6.2f}s {what or ''}")
        diags = [d for d in r.server if d["event"] == "diag" and d["t"] >= opened["t"]]
        if diags:
            top = {k: max(d[k] for d in diags) for k in ("tasks", "in_flight", "buffered", "rss", "traced")}
            print(
                f"  server: at most {top['tasks']} tasks, {top['in_flight']} calls in flight, "
                f"{top['buffered'] / MB:.2f} MB unwritten, RSS {top['rss'] / MB:.1f} MB"
                + (f", {top['traced'] / MB:.1f} MB traced" if top["traced"] else "")
            )
            print(f"  server: incidents {diags[-1]['incidents']}")
            _cpu_windows(r, conn, opened["t"], flood)
        during = r.attacked.during(opened["t"], (r.server_event("released", conn=conn) or {"t": 1e18})["t"])
        if during:
            print(
                f"  bystander: {len(during)} of {len(r.attacked.latencies)} calls while the attacker was "
                f"connected, max {max(during) / 1e6:.2f} ms"
            )
    print(
        f"  bystander process waited for a CPU {r.alone.waited:.0%} of the time alone, "
        f"{r.attacked.waited:.0%} with the attacker (other processes on the machine)"
    )
    errors = {**r.alone.errors, **r.attacked.errors}
    if errors:
        print(f"  bystander errors: {errors}")
    print(
        f"  server peak RSS (ru_maxrss): {r.max_rss_before / MB:.1f} MB before, "
        f"{r.max_rss_after / MB:.1f} MB after the attack"
    )
    if r.tcp_peak != (0, 0):
        (o0, m0), (o1, m1), (o2, m2) = r.tcp_before, r.tcp_peak, r.tcp_after
        print(
            f"  kernel TCP, machine-wide (before/most/after): {m0 / MB:.1f}/{m1 / MB:.1f}/{m2 / MB:.1f} MB "
            f"of buffers, {o0}/{o1}/{o2} orphaned sockets"
        )
    tops = [e for e in r.server if e["event"] == "top"]
    if tops:
        print(f"  tracemalloc at the high ({tops[-1]['traced'] / MB:.1f} MB traced):")
        for site in tops[-1]["sites"]:
            print(f"    {site['size'] / MB:8.2f} MB {site['count']:>8}  {site['where']}")


# -- the command line -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.flood", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append", help="default: both")
    parser.add_argument("--requests", type=int, default=100_000, help="frames the attacker sends")
    parser.add_argument("--calls", type=int, default=3_000, help="bystander calls per measurement")
    parser.add_argument(
        "--rate", type=float, default=800.0, help="bystander calls a second (under the default 1,000)"
    )
    parser.add_argument("--hold", type=float, default=5.0, help="most seconds the attacker stays after")
    parser.add_argument("--method", choices=("echo", "slow"), default="echo", help="what the attacker calls")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--tracemalloc", action="store_true", help="trace the server's allocations (slow)")
    parser.add_argument("--attacker", type=int, metavar="PORT", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    opts.requests = max(1, min(opts.requests, 1_000_000))
    opts.calls = max(10, min(opts.calls, 100_000))
    opts.hold = max(0.0, min(opts.hold, 20.0))
    opts.rate = max(10.0, min(opts.rate, 100_000.0))
    return opts


async def run(opts: argparse.Namespace) -> list[Result]:
    results = []
    async with asyncio.timeout(OVERALL_SECONDS):
        for name in opts.scenario or list(SCENARIOS):
            results.append(await scenario(name, opts))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.attacker is not None:
        run_loop(attack(opts.attacker, opts.requests, opts.hold, opts.method, budget=30.0), opts.loop)
        return 0
    try:
        results = run_loop(run(opts), opts.loop)
    except (FloodError, TimeoutError, OSError, grestws.GrestwsError) as exc:
        print(f"flood: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    report(results, opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
