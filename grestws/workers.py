"""Worker processes serving one port together: the supervisor, and both ends of the line
between it and each worker.

``grestws serve --workers N`` runs N workers (the same command with a hidden
``--worker INDEX:FD``) under a :class:`Supervisor`. FD is the worker's end of a socket pair
to the supervisor, the control line: a worker writes one line there once it serves
(``ready {"urls": [...], "shared": bool}``, :func:`report_ready`) and reads ``S`` (stop
gracefully) and ``F`` (force) from it (:func:`on_control`); the end of file means the
supervisor is gone, and the worker stops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from grestws.broker import LocalBroker
from grestws.server import Server

__all__ = (
    "MAX_RESTARTS",
    "RESTART_WINDOW",
    "Ready",
    "Supervisor",
    "check_bindable",
    "on_control",
    "report_ready",
)

logger = logging.getLogger("grestws")


# -- the worker's end -----------------------------------------------------------------------


class Ready(msgspec.Struct):
    """What a worker tells its supervisor once it serves: its URLs, and whether its App's
    broker reaches the other workers (not the :class:`LocalBroker`)."""

    urls: list[str]
    shared: bool


_ready_decoder = msgspec.json.Decoder(Ready)


async def report_ready(control: socket.socket, server: Server, stop: asyncio.Event) -> None:
    """Tell the supervisor that this worker serves, at which URLs, and whether its App has
    a broker that reaches the other workers; stop when the supervisor is gone."""
    ready = Ready(server.urls(), shared=not isinstance(server.app.rooms.broker, LocalBroker))
    try:
        await asyncio.get_running_loop().sock_sendall(control, b"ready " + msgspec.json.encode(ready) + b"\n")
    except OSError:
        logger.warning("the supervising process is gone: shutting down")
        stop.set()


def on_control(control: socket.socket, stop: asyncio.Event, force: asyncio.Event) -> None:
    """What the supervisor says: ``S`` stop gracefully, ``F`` force; end of file: it is gone."""
    try:
        data = control.recv(64)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        asyncio.get_running_loop().remove_reader(control.fileno())
        if not stop.is_set():
            logger.warning("the supervising process is gone: shutting down")
        stop.set()
    elif b"F" in data:
        stop.set()
        force.set()
    elif b"S" in data:
        stop.set()


# -- the supervisor ------------------------------------------------------------------------

MAX_RESTARTS = 5
"""Unexpected worker exits the supervisor restarts within :data:`RESTART_WINDOW` seconds;
one more within the window and it gives up (stops the other workers, exits with 1)."""
RESTART_WINDOW = 60.0


class _Worker:
    """One worker process and the supervisor's end of its control line."""

    def __init__(
        self,
        index: int,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.index = index
        self.process = process
        self.reader = reader
        self.writer = writer
        self.serving = False

    @property
    def name(self) -> str:
        return f"worker {self.index} (pid {self.process.pid})"

    def tell(self, command: bytes) -> None:
        """Send ``S`` or ``F``; a worker that is gone is left alone."""
        if not self.writer.is_closing():
            with contextlib.suppress(OSError):
                self.writer.write(command)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Runs ``count`` workers (``grestws serve ... --worker``) that serve one port together
    (SO_REUSEPORT), relays SIGINT and SIGTERM to them, and restarts those that die.

    The first worker starts alone, so that a module that fails to import or an address
    that is taken is reported once; the others start once it serves. ``listening on`` is
    logged once every worker serves.

    Args:
        command: The worker's command line without the control option (``--worker``).
        env: The workers' environment.
        count: How many workers.
        on_exit: Called with the pid of every worker that exited (to forget its metrics).
    """

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        count: int,
        on_exit: Callable[[int], object] | None = None,
    ) -> None:
        self.command = list(command)
        self.env = env
        self.count = count
        self.on_exit = on_exit
        self.workers: dict[int, _Worker] = {}
        self.events: asyncio.Queue[tuple[str, _Worker | None, Any]] = asyncio.Queue()
        self.signals = 0
        self.stopping = False
        self.starting = True
        self.code = 0
        self.exits: collections.deque[float] = collections.deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> int:
        """Supervise until every worker has stopped; the exit code (see :func:`main`)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.events.put_nowait, ("signal", None, None))
        logger.info("starting %d workers", self.count)
        await self._spawn(1)
        while self.workers:
            kind, worker, data = await self.events.get()
            if kind == "signal":
                self._on_signal()
            elif kind == "ready" and worker is not None:
                await self._on_ready(worker, data)
            elif kind == "exit" and worker is not None:
                await self._on_exit(worker, data)
        logger.info("stopped")
        return self.code

    async def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                f"--worker={index}:{theirs.fileno()}",
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=self.env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        worker = self.workers[index] = _Worker(index, process, reader, writer)
        if self.stopping:  # a signal came while it was starting: it stops once it serves
            worker.tell(b"F" if self.signals > 1 else b"S")
        task = asyncio.ensure_future(self._watch(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, worker: _Worker) -> None:
        """Report when ``worker`` serves (its ``ready`` line), then when it exits."""
        try:
            line = await worker.reader.readline()
        except (OSError, ValueError):
            line = b""
        # A line that does not decode: the worker counts as one that never served.
        with contextlib.suppress(msgspec.MsgspecError):
            if line.startswith(b"ready "):
                self.events.put_nowait(("ready", worker, _ready_decoder.decode(line.removeprefix(b"ready "))))
        code = await worker.process.wait()
        worker.writer.close()
        self.events.put_nowait(("exit", worker, code))

    def _on_signal(self) -> None:
        self.signals += 1
        if self.signals == 1:
            logger.info("shutting down: stopping %d workers", len(self.workers))
            self.stopping = True
            self._tell_all(b"S")
        elif self.signals == 2:
            logger.warning("shutdown forced: the workers cancel their calls in flight")
            self.code = 1
            self._tell_all(b"F")
        else:
            logger.warning("killing %d workers", len(self.workers))
            self.code = 1
            for worker in self.workers.values():
                worker.kill()

    def _tell_all(self, command: bytes) -> None:
        for worker in self.workers.values():
            worker.tell(command)

    async def _on_ready(self, worker: _Worker, ready: Ready) -> None:
        worker.serving = True
        if not self.starting:
            logger.info("%s serves again", worker.name)
            return
        logger.info("%s serves", worker.name)
        if worker.index == 1 and not self.stopping:
            for index in range(2, self.count + 1):
                await self._spawn(index)
        if all(w.serving for w in self.workers.values()) and len(self.workers) == self.count:
            self.starting = False
            if self.stopping:
                return
            for url in ready.urls:
                logger.info("listening on %s", url)
            if not ready.shared:
                logger.warning(
                    "%d workers without a broker (--broker): each worker has rooms of its own, and "
                    "pushes to rooms, users and connections reach the connections of one worker only",
                    self.count,
                )

    async def _on_exit(self, worker: _Worker, code: int) -> None:
        del self.workers[worker.index]
        if self.on_exit is not None:
            self.on_exit(worker.process.pid)
        if self.stopping:
            if code != 0:
                logger.warning("%s %s", worker.name, _exit_reason(code))
                self.code = 1
            return
        if self.starting and not worker.serving:
            logger.error("%s %s before it served; stopping", worker.name, _exit_reason(code))
            self.code = code if code in (1, 2) else 1
            self._stop_all()
            return
        now = time.monotonic()
        self.exits.append(now)
        while self.exits and self.exits[0] < now - RESTART_WINDOW:
            self.exits.popleft()
        if len(self.exits) > MAX_RESTARTS:
            logger.error(
                "%s %s: %d unexpected exits within %g s, giving up",
                worker.name,
                _exit_reason(code),
                len(self.exits),
                RESTART_WINDOW,
            )
            self.code = 1
            self._stop_all()
            return
        logger.error("%s %s; restarting it", worker.name, _exit_reason(code))
        await self._spawn(worker.index)

    def _stop_all(self) -> None:
        self.stopping = True
        self.signals = max(self.signals, 1)
        self._tell_all(b"S")


def check_bindable(host: str, port: int) -> None:
    """Bind ``host:port`` without SO_REUSEPORT and let go of it: raise what binding raises
    (the port is taken, by another server or by another group of workers), so that the
    workers never join a port that something else listens on.

    Raises:
        OSError: the address cannot be bound.
    """
    seen: set[tuple[Any, ...]] = set()
    for family, kind, proto, _, address in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        if (family, *address[:2]) in seen:
            continue
        seen.add((family, *address[:2]))
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)
