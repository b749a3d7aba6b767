"""What the orchestrator and the peer processes share: spawning, timing and statistics.

The orchestrator side starts a peer's server process, reads the port it prints, runs the
client process with a deadline and reads its JSON line, and kills whatever is left. The
peer side parses the same command line, picks the event loop, and reads the CPU time and
memory of its own process. Nothing here knows about a particular peer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import psutil

from benchmarks.payloads import ServerStats

__all__ = (
    "LOOPS",
    "PEER_ENV",
    "ROOT",
    "SHAPES",
    "BenchError",
    "PeerArgs",
    "Summary",
    "client_command",
    "clock_ns",
    "cpu_seconds",
    "parse_peer_args",
    "percentile",
    "prepare_process",
    "process_stats",
    "run_client",
    "run_loop",
    "server_command",
    "server_process",
    "summarize",
    "wait_for_quiet",
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: the working directory of every peer process."""

LOOPS = ("asyncio", "uvloop")
SHAPES = (
    "sequential",
    "pipelined",
    "many",
    "crowd",
    "fanout-100",
    "fanout",
    "fanout-5000",
    "large",
    "payload-100b",
    "payload-10kb",
    "payload-1mb",
    "memory",
)
"""The shapes of :mod:`benchmarks.shapes`; ``fanout`` is the one with 500 clients."""

clock_ns = time.perf_counter_ns
"""The clock of every timed section."""

_STOP_GRACE = 5.0


class BenchError(Exception):
    """A peer process failed, timed out, or printed something unexpected."""


# -- the peer processes' command line ---------------------------------------------------


@dataclass(frozen=True)
class PeerArgs:
    """What one peer process is asked to do (the server uses ``loop`` and ``cpu`` only)."""

    side: str
    loop: str = "asyncio"
    cpu: int | None = None
    port: int = 0
    shape: str = "sequential"
    count: int = 0
    connections: int = 1
    depth: int = 1
    warmup: int = 0
    timeout: float = 120.0


PEER_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
"""The environment of every peer process. asyncio reads sockets into fresh 256 KiB buffers;
with glibc's initial mmap threshold each read costs an mmap, an mremap and a munmap until
glibc happens to raise the threshold, which made any peer up to twice as slow at random.
A fixed threshold gives every peer the same allocator (grestws sets it itself, see
docs/performance.md)."""


def parse_peer_args(argv: Sequence[str]) -> PeerArgs:
    """Parse ``server|client [options]`` as written by :func:`server_command` / :func:`client_command`."""
    parser = argparse.ArgumentParser(description="one side of a benchmark peer")
    parser.add_argument("side", choices=("server", "client"))
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--shape", choices=SHAPES, default="sequential")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0)
    ns = parser.parse_args(argv)
    return PeerArgs(**vars(ns))


def _module(peer: str) -> str:
    """``peer``'s module: ``grestws-uvicorn`` runs ``grestws_uvicorn_peer``; a variant
    ``name@tag`` (``grestws@base``) runs the module of ``name``."""
    return f"benchmarks.peers.{peer.partition('@')[0].replace('-', '_')}_peer"


def server_command(peer: str, loop: str, cpu: int | None, python_options: Sequence[str] = ()) -> list[str]:
    """The command line of ``peer``'s server process (``python_options`` go before ``-m``)."""
    command = [sys.executable, *python_options, "-m", _module(peer), "server", "--loop", loop]
    return command if cpu is None else [*command, "--cpu", str(cpu)]


def client_command(peer: str, args: PeerArgs, python_options: Sequence[str] = ()) -> list[str]:
    """The command line of ``peer``'s client process (``python_options`` go before ``-m``)."""
    command = [sys.executable, *python_options, "-m", _module(peer), "client"]
    command += ["--loop", args.loop, "--port", str(args.port)]
    command += ["--shape", args.shape, "--count", str(args.count), "--connections", str(args.connections)]
    command += ["--depth", str(args.depth), "--warmup", str(args.warmup), "--timeout", str(args.timeout)]
    return command if args.cpu is None else [*command, "--cpu", str(args.cpu)]


# -- inside a peer process --------------------------------------------------------------


def prepare_process(cpu: int | None) -> None:
    """Allow as many sockets as the hard limit does, and pin the process to ``cpu`` if given."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


def run_loop(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` on the standard asyncio event loop or on uvloop."""
    factory = None
    if loop == "uvloop":
        import uvloop  # only the uvloop runs need it

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


_this_process = psutil.Process()


def cpu_seconds() -> float:
    """User plus system CPU seconds this process has used."""
    times = _this_process.cpu_times()
    return float(times.user + times.system)


def user_seconds() -> float:
    """User CPU seconds this process has used (of :func:`cpu_seconds`)."""
    return float(_this_process.cpu_times().user)


def process_stats(collect: bool = False) -> ServerStats:
    """This process's RSS and CPU time; ``collect`` runs the garbage collector first."""
    if collect:
        gc.collect()
    times = _this_process.cpu_times()
    return ServerStats(
        rss=_this_process.memory_info().rss, cpu=float(times.user + times.system), user=float(times.user)
    )


def percentile(values: Sequence[int], q: float) -> int:
    """The ``q``-th percentile (nearest rank) of ``values``, which must be sorted."""
    rank = max(0, min(len(values) - 1, round(q / 100 * len(values)) - 1))
    return values[rank]


# -- the orchestrator side --------------------------------------------------------------


@contextlib.contextmanager
def server_process(
    command: Sequence[str], ready_timeout: float = 30.0, env: Mapping[str, str] = PEER_ENV
) -> Iterator[int]:
    """Start a server process in ``env``, yield the port it prints, and kill it on the way out.

    Raises:
        BenchError: the server exited or printed no port within ``ready_timeout`` s.
    """
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            assert process.stdout is not None
            yield _read_port(process, process.stdout, ready_timeout, stderr)
        finally:
            _stop(process)
            if process.stdout is not None:
                process.stdout.close()


def wait_for_quiet(threshold: float = 20.0, max_wait: float = 30.0, sample: float = 0.5) -> float:
    """Wait until the machine's CPU use is below ``threshold`` percent (of all CPUs), for at
    most ``max_wait`` s; return the last sample. Between runs no peer process is alive, so
    this is other work on the machine, which would slow the next run down."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = float(psutil.cpu_percent(interval=sample))
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def _read_port(process: subprocess.Popen[str], stdout: IO[str], timeout: float, stderr: IO[str]) -> int:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([stdout], [], [], remaining)
        if not ready:
            break
        line = stdout.readline()
        if not line:
            raise BenchError(f"server exited with {process.wait()}: {_tail(stderr)}")
        if line.strip().isdigit():
            return int(line)
    raise BenchError(f"server printed no port within {timeout:g} s: {_tail(stderr)}")


def _stop(process: subprocess.Popen[str]) -> None:
    """Terminate ``process`` and its children (a profiler's target), killing stragglers."""
    if process.poll() is not None:
        return
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(process.pid).children(recursive=True)
    if children:  # a profiler: stop its target, then let it write its profile and exit
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        psutil.wait_procs(children, timeout=_STOP_GRACE)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_STOP_GRACE)
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(_STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(stream: IO[str], chars: int = 2000) -> str:
    stream.seek(0)
    return stream.read()[-chars:].strip() or "(no output)"


def run_client(command: Sequence[str], timeout: float, env: Mapping[str, str] = PEER_ENV) -> dict[str, Any]:
    """Run a client process in ``env`` to its end and return the JSON object it printed last.

    Raises:
        BenchError: it failed, took longer than ``timeout`` s (it is killed), or printed
            no JSON object.
    """
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise BenchError(f"client did not finish within {timeout:g} s: {_tail(stderr)}") from None
        finally:
            _stop(process)
        if process.returncode != 0:
            raise BenchError(f"client exited with {process.returncode}: {_tail(stderr)}")
        # the last JSON object printed: a profiler wrapping the client may print after it
        lines = [line for line in out.splitlines() if line.startswith("{")]
        try:
            result = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError as exc:
            raise BenchError(f"client printed {lines[-1][:200]!r}, not JSON") from exc
        if not isinstance(result, dict):
            raise BenchError(f"client printed no JSON object: {out[-200:]!r}")
        return result


# -- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The median and range of a few repeats."""

    median: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}


def summarize(values: Sequence[float]) -> Summary | None:
    """Median, min and max of ``values``; None when there are none."""
    if not values:
        return None
    return Summary(statistics.median(values), min(values), max(values), len(values))
