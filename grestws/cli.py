"""``grestws serve MODULE:ATTR``: serve an :class:`~grestws.app.App` from the command line.

SIGINT or SIGTERM starts a graceful shutdown (calls in flight get the App's
``shutdown_timeout``); a second one during that shutdown forces it: the calls still in
flight are cancelled and the connections closed at once.

``--broker URL`` (default ``$GRESTWS_BROKER``) gives the App the broker that carries its
pushes to rooms and users to the other processes (:func:`grestws.broker.url.broker_from_url`).
``--workers N`` runs N worker processes on one port (SO_REUSEPORT) under a
:class:`Supervisor`: each is this command again, with a hidden ``--worker INDEX:FD``, FD
being its end of a socket pair to the supervisor. A worker writes one line there once it
serves (``ready {"urls": [...], "shared": bool}``) and reads ``S`` (stop gracefully) and
``F`` (force); the end of file means the supervisor is gone, and the worker stops.

Exit codes: 0 stopped by a signal after a graceful shutdown; 1 the address could not be
bound, or the shutdown was forced by a second signal (calls were cancelled unanswered), or
(``--workers``) a worker stopped with an error or they died too often; 2 a usage error:
bad arguments, a bad broker URL, a module that is not found or fails to import, an
attribute that is no App, an App that cannot be served.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import sysconfig
import time
import traceback
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from grestws.app import App
from grestws.broker import Broker, LocalBroker
from grestws.broker.url import broker_from_url, redact
from grestws.exceptions import ContractError, InvalidStateError
from grestws.server import Server, serve

__all__ = ("Supervisor", "load_app", "main")

T = TypeVar("T")

logger = logging.getLogger("grestws")


def load_app(target: str) -> App:
    """Import ``MODULE:ATTR`` and return the App it names (a callable returning one is called).

    Raises:
        ValueError: the target is not ``MODULE:ATTR``, or names something that is no App.
        ImportError: the module is not found.
        Exception: whatever importing the module raised (a SyntaxError in it, an
            ImportError of something it imports, ...), as it was raised.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected MODULE:ATTR, got {target!r}")
    module = importlib.import_module(module_name)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(value, App) and callable(value):
        try:
            value = value()
        except TypeError as exc:
            raise ValueError(f"{target} is not a grestws.App nor a function returning one ({exc})") from exc
    if not isinstance(value, App):
        raise ValueError(f"{target} is a {type(value).__name__}, not a grestws.App")
    return value


def _import(module_name: str) -> str | None:
    """Import ``module_name`` ahead of :func:`load_app`, which then finds it imported.

    Returns:
        None when it imported, or when it is not found itself (left to load_app's usage
        error); else the account of the failure to log (see :func:`import_failure`).
    """
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            return None  # the target itself (or a package of it) is not found
        return import_failure(module_name, exc)
    except Exception as exc:
        return import_failure(module_name, exc)
    return None


def _in_stdlib(filename: str) -> bool:
    """Whether ``filename`` is the standard library's (or frozen into the interpreter)."""
    if filename.startswith("<"):
        return True

    def under(*names: str) -> bool:
        return any(filename.startswith(sysconfig.get_path(name) + os.sep) for name in names)

    return under("stdlib", "platstdlib") and not under("purelib", "platlib")


def import_failure(module_name: str, exc: BaseException) -> str:
    """A short account of why importing ``module_name`` failed: where (``file:line`` of
    the last frame outside the standard library), the error, and the traceback's frames
    without the import machinery's and this module's."""
    ours = {str(Path(__file__)), str(Path(importlib.__file__ or ""))}
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen importlib") and frame.filename not in ours
    ]
    own = [frame for frame in frames if not _in_stdlib(frame.filename)]
    if isinstance(exc, SyntaxError) and exc.filename is not None:
        where = f"{exc.filename}:{exc.lineno}"
    elif own or frames:
        last = (own or frames)[-1]
        where = f"{last.filename}:{last.lineno}"
    else:
        where = module_name
    if isinstance(exc, ImportError):
        what = "an import inside it failed"
    elif isinstance(exc, SyntaxError):
        what = "syntax error"
    else:
        what = "exception"
    error = traceback.format_exception_only(exc)[-1].strip()
    lines = [f"cannot import {module_name}: {what} at {where}: {error}"]
    lines += [line.rstrip() for line in traceback.format_list(frames)]
    lines += [line.rstrip() for line in traceback.format_exception_only(exc)]
    return "\n".join(lines)


async def run(
    app: App, host: str, port: int, *, control: socket.socket | None = None, **options: Any
) -> bool:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully; a second signal
    during the shutdown forces it. ``options`` go to :func:`grestws.serve`.

    ``control`` is a worker's line to its supervisor (``--workers``): the worker reports
    there that it serves, then takes ``S`` (stop) and ``F`` (force) from it as it takes
    the signals, and stops when the supervisor is gone (end of file).

    Returns:
        True when the shutdown was forced (calls in flight cancelled), else False.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    force = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        # Counted apart from the supervisor's S: a Ctrl-C reaches a worker both ways.
        nonlocal signals
        signals += 1
        (force if signals > 1 else stop).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    server = await serve(app, host, port, **options)
    for url in server.urls():
        logger.log(logging.INFO if control is None else logging.DEBUG, "listening on %s", url)
    if control is not None:
        await _report_ready(control, server, stop)
        loop.add_reader(control.fileno(), _on_control, control, stop, force)
    try:
        await stop.wait()
        logger.info("shutting down")
        calls = _in_flight(server)
        if calls:
            logger.info(
                "waiting up to %g s for %s in flight (a second signal forces the shutdown)",
                app.shutdown_timeout,
                _calls(calls),
            )
    finally:
        forced = await _close(server, force)
        if control is not None:
            loop.remove_reader(control.fileno())
    logger.info("stopped")
    return forced


class Ready(msgspec.Struct):
    """What a worker tells its supervisor once it serves: its URLs, and whether its App's
    broker reaches the other workers (not the :class:`LocalBroker`)."""

    urls: list[str]
    shared: bool


_ready_decoder = msgspec.json.Decoder(Ready)


async def _report_ready(control: socket.socket, server: Server, stop: asyncio.Event) -> None:
    """Tell the supervisor that this worker serves, at which URLs, and whether its App has
    a broker that reaches the other workers; stop when the supervisor is gone."""
    ready = Ready(server.urls(), shared=not isinstance(server.app.rooms.broker, LocalBroker))
    try:
        await asyncio.get_running_loop().sock_sendall(control, b"ready " + msgspec.json.encode(ready) + b"\n")
    except OSError:
        logger.warning("the supervising process is gone: shutting down")
        stop.set()


def _on_control(control: socket.socket, stop: asyncio.Event, force: asyncio.Event) -> None:
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


FORCED_CLOSE_WAIT = 5.0
"""Seconds a forced shutdown waits for the server to close (connections dropped, the
broker stopped) before the command exits anyway."""


def _calls(count: int) -> str:
    return f"{count} call" if count == 1 else f"{count} calls"


def _in_flight(server: Server) -> int:
    """How many calls the connections of ``server`` are serving."""
    return sum(conn.in_flight for conn in server.app.connections.owned_by(server))


async def _close(server: Server, force: asyncio.Event) -> bool:
    """Close ``server`` gracefully, or at once when ``force`` is set meanwhile: cancel
    the calls still in flight so that the shutdown need not wait for them. True if forced."""
    closing = asyncio.ensure_future(server.close())
    forcing = asyncio.ensure_future(force.wait())
    try:
        await asyncio.wait((closing, forcing), return_when=asyncio.FIRST_COMPLETED)
    finally:
        forcing.cancel()
    if closing.done():
        await closing
        return False
    logger.warning("shutdown forced: cancelling %s in flight", _calls(_in_flight(server)))
    for conn in server.app.connections.owned_by(server):
        conn.cancel_calls()
    done, _ = await asyncio.wait((closing,), timeout=FORCED_CLOSE_WAIT)
    if done:
        await closing
    else:  # what is left is cancelled as the event loop ends
        logger.warning("not closed %g s after the forced shutdown: exiting anyway", FORCED_CLOSE_WAIT)
    return True


def run_loop(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` on the standard event loop or on uvloop; its result.

    Raises:
        ImportError: uvloop was asked for and is not installed (``main`` is closed).
    """
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            main.close()
            raise
        return uvloop.run(main)
    return asyncio.run(main)


# -- workers -------------------------------------------------------------------------------

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
    """

    def __init__(self, command: Sequence[str], env: dict[str, str], count: int) -> None:
        self.command = list(command)
        self.env = env
        self.count = count
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


def _probe(host: str, port: int) -> None:
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


def _worker_command(args: argparse.Namespace) -> list[str]:
    """The command line of a worker: this command, with ``--workers`` dropped (the broker
    goes in the environment, out of ``ps``'s sight)."""
    command = [sys.executable, "-m", "grestws", "serve", args.target]
    command += [f"--host={args.host}", f"--port={args.port}", f"--loop={args.loop}"]
    command += [f"--ping-interval={args.ping_interval!r}", f"--ping-timeout={args.ping_timeout!r}"]
    command += [f"--log-level={args.log_level}"]
    if args.compression:
        command.append("--compression")
    return command


def _supervise(args: argparse.Namespace, broker_url: str | None) -> int:
    """Run ``args.workers`` workers; the exit code."""
    try:
        _probe(args.host, args.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    env = dict(os.environ)
    env.pop(BROKER_ENV, None)
    if broker_url:
        env[BROKER_ENV] = broker_url
    try:
        return asyncio.run(Supervisor(_worker_command(args), env, args.workers).run())
    except OSError as exc:  # the workers that run see their supervisor go, and stop
        logger.error("cannot start a worker: %s", exc)
        return 1


# -- the command -----------------------------------------------------------------------------

BROKER_ENV = "GRESTWS_BROKER"
"""The environment variable that gives ``--broker`` its default."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes, 1 or more, got {text!r}")
    return value


def _worker(text: str) -> tuple[int, int]:
    index, _, fd = text.partition(":")
    try:
        return int(index), int(fd)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected INDEX:FD, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grestws", description="Serve grestws socket contracts.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the App named by MODULE:ATTR")
    serve_cmd.add_argument("target", metavar="MODULE:ATTR", help="e.g. examples.chat.server:app")
    serve_cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve_cmd.add_argument(
        "--port", type=_port, default=8765, help="port to listen on (0-65535); 0 picks a free one"
    )
    serve_cmd.add_argument(
        "--loop",
        default="asyncio",
        choices=["asyncio", "uvloop"],
        help="event loop (uvloop needs the 'uvloop' extra: pip install 'grestws[uvloop]')",
    )
    serve_cmd.add_argument(
        "--ping-interval",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="seconds of silence from a client before it is pinged; 0: never (default 30)",
    )
    serve_cmd.add_argument(
        "--ping-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds a pinged client has to send anything before it is dropped (default 10)",
    )
    serve_cmd.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    serve_cmd.add_argument(
        "--broker",
        metavar="URL",
        help=(
            "how pushes to rooms and users reach the other processes: redis://HOST:PORT/DB"
            "[?namespace=N&presence_ttl=S&operation_timeout=S] (the 'redis' extra) or memory:// "
            f"(default: ${BROKER_ENV}, else the App's own)"
        ),
    )
    serve_cmd.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes serving the port together (SO_REUSEPORT); default 1",
    )
    serve_cmd.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="logging level (default INFO)",
    )
    # A worker of --workers: its index and the descriptor of its line to the supervisor.
    serve_cmd.add_argument("--worker", type=_worker, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``grestws`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    worker: tuple[int, int] | None = args.worker
    control: socket.socket | None = None
    if worker is not None:
        # Until its loop takes the signals, a worker leaves them to the supervisor, which
        # relays them on the control line (a Ctrl-C reaches both).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        control = socket.socket(fileno=worker[1])
        control.setblocking(False)
    prefix = "" if worker is None else f"[worker {worker[0]}] "
    logging.basicConfig(
        level=args.log_level, format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"
    )
    if "" not in sys.path:
        sys.path.insert(0, "")
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        parser.error("--loop uvloop needs uvloop: pip install 'grestws[uvloop]'")
    source = "--broker" if args.broker is not None else f"${BROKER_ENV}"
    broker_url: str | None = args.broker if args.broker is not None else os.environ.get(BROKER_ENV)
    broker: Broker | None = None
    if broker_url:
        try:
            broker = broker_from_url(broker_url)
        except (ValueError, ImportError) as exc:
            parser.error(f"{source}: {exc}")
    if args.workers > 1 and worker is None:
        if args.port == 0:
            parser.error("--workers: the workers share one port; give it with --port (0 is not one)")
        if not hasattr(socket, "SO_REUSEPORT"):
            parser.error("--workers needs SO_REUSEPORT, which this platform does not have")
        if ":" not in args.target:
            parser.error(f"expected MODULE:ATTR, got {args.target!r}")
        return _supervise(args, broker_url or None)
    module_name = args.target.partition(":")[0]
    failure = _import(module_name) if module_name else None
    if failure is not None:
        logger.error("%s", failure)
        return 2
    try:
        app = load_app(args.target)
    except (ImportError, ValueError) as exc:
        parser.error(str(exc))
    if broker is not None:
        replaced = app.rooms.broker
        try:
            app.rooms.set_broker(broker)
        except InvalidStateError as exc:
            parser.error(f"{source}: {exc}")
        if worker is None or worker[0] == 1:  # once, not once per worker
            logger.info("broker: %s", redact(broker_url or ""))
            if not isinstance(replaced, LocalBroker):
                logger.info("%s replaces the App's own broker %r", source, replaced)
    try:
        options: dict[str, Any] = {
            "ping_interval": args.ping_interval or None,
            "ping_timeout": args.ping_timeout or None,
            "compression": args.compression,
        }
        if control is not None:
            options["reuse_port"] = True
        forced = run_loop(run(app, args.host, args.port, control=control, **options), args.loop)
    except ImportError:
        parser.error("--loop uvloop needs uvloop: pip install 'grestws[uvloop]'")
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    except ContractError as exc:
        logger.error("%s", exc)
        return 2
    finally:
        if control is not None:
            control.close()
    return 1 if forced else 0
