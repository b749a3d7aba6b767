"""``grestws serve MODULE:ATTR``: serve an :class:`~grestws.app.App` from the command line;
``grestws asyncapi MODULE:ATTR``: print its AsyncAPI document (:mod:`grestws.asyncapi`);
``grestws typescript MODULE:ATTR -o DIR``: write its TypeScript client (:mod:`grestws.typescript`).

SIGINT or SIGTERM starts a graceful shutdown (calls in flight get the App's
``shutdown_timeout``); a second one during that shutdown forces it: the calls still in
flight are cancelled and the connections closed at once.

``--broker URL`` (default ``$GRESTWS_BROKER``) gives the App the broker that carries its
pushes to rooms and users to the other processes (:func:`grestws.broker.url.broker_from_url`).
``--workers N`` runs N worker processes on one port (SO_REUSEPORT) under a
:class:`~grestws.workers.Supervisor`: each is this command again, with a hidden
``--worker INDEX:FD``, FD being its end of the control line (see :mod:`grestws.workers`).

Exit codes: 0 stopped by a signal after a graceful shutdown; 1 the address could not be
bound, or the shutdown was forced by a second signal (calls were cancelled unanswered), or
(``--workers``) a worker stopped with an error or they died too often; 2 a usage error:
bad arguments, a bad broker URL, a module that is not found or fails to import, an
attribute that is no App, an App that cannot be served.

``grestws asyncapi`` writes the JSON to stdout, or to ``-o FILE``; it exits with 0, with 1
when the file cannot be written, and with 2 for a usage error (as ``serve``, and a bad
``--server``). ``grestws typescript`` prints the paths it wrote; it exits as ``asyncapi``
does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import sysconfig
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from grestws import describe
from grestws.access_log import AccessLog
from grestws.app import App
from grestws.broker import Broker, LocalBroker
from grestws.broker.url import broker_from_url, redact
from grestws.exceptions import ContractError, InvalidStateError
from grestws.recovery import Recovery
from grestws.server import Server, serve
from grestws.workers import Supervisor, check_bindable, on_control, report_ready

__all__ = ("load_app", "main")

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
        await report_ready(control, server, stop)
        loop.add_reader(control.fileno(), on_control, control, stop, force)
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


def _worker_command(args: argparse.Namespace) -> list[str]:
    """The command line of a worker: this command, with ``--workers`` dropped (the broker
    goes in the environment, out of ``ps``'s sight)."""
    command = [sys.executable, "-m", "grestws", "serve", args.target]
    command += [f"--host={args.host}", f"--port={args.port}", f"--loop={args.loop}"]
    command += [f"--ping-interval={args.ping_interval!r}", f"--ping-timeout={args.ping_timeout!r}"]
    command += [f"--log-level={args.log_level}", f"--transport={args.transport}"]
    if args.compression:
        command.append("--compression")
    if args.access_log:
        command.append("--access-log")
    if args.metrics_port is not None:  # the worker counts; the supervisor serves the sums
        command.append(f"--metrics-port={args.metrics_port}")
    return command


def _supervise(args: argparse.Namespace, broker_url: str | None) -> int:
    """Run ``args.workers`` workers; the exit code."""
    try:
        check_bindable(args.host, args.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    env = dict(os.environ)
    env.pop(BROKER_ENV, None)
    if broker_url:
        env[BROKER_ENV] = broker_url
    with contextlib.ExitStack() as stack:
        on_exit = None
        if args.metrics_port is not None:
            from grestws.prometheus import MULTIPROCESS_ENV, workers_metrics  # checked by _serve

            try:
                directory, url, on_exit = stack.enter_context(
                    workers_metrics(args.metrics_host or args.host, args.metrics_port)
                )
            except OSError as exc:
                logger.error("cannot serve the metrics on port %s: %s", args.metrics_port, exc)
                return 1
            env[MULTIPROCESS_ENV] = directory
            logger.info("metrics of every worker on %s", url)
        try:
            return asyncio.run(Supervisor(_worker_command(args), env, args.workers, on_exit).run())
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
    parser = argparse.ArgumentParser(
        prog="grestws", description="Serve grestws socket contracts, and describe them."
    )
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
        "--transport",
        default="websockets",
        choices=["websockets", "picows"],
        help="WebSocket library that accepts the connections (picows needs the 'picows' extra: "
        "pip install 'grestws[picows]'); default websockets",
    )
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
        "--recovery",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help=(
            "keep what reconnecting clients missed, and their sessions, for SECONDS "
            "(in Redis with a Redis broker); default: the App's own setting"
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
    serve_cmd.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per call (logger grestws.access, at INFO)",
    )
    serve_cmd.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help=(
            "serve Prometheus metrics at http://HOST:PORT/metrics (the 'metrics' extra); "
            "with --workers, the sums of every worker"
        ),
    )
    serve_cmd.add_argument(
        "--metrics-host", metavar="HOST", help="address the metrics listen on (default: --host)"
    )
    # A worker of --workers: its index and the descriptor of its line to the supervisor.
    serve_cmd.add_argument("--worker", type=_worker, help=argparse.SUPPRESS)

    describe.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``grestws`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in describe.COMMANDS:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        app = _load(parser, args.target)
        if app is None:
            return 2
        return describe.COMMANDS[args.command](parser, args, app)
    return _serve(parser, args)


def _load(parser: argparse.ArgumentParser, target: str) -> App | None:
    """The App ``target`` names, from the current directory too; ``None`` once a module
    that fails to import is logged. Any other problem is a usage error (exits)."""
    if "" not in sys.path:
        sys.path.insert(0, "")
    module_name = target.partition(":")[0]
    failure = _import(module_name) if module_name else None
    if failure is not None:
        logger.error("%s", failure)
        return None
    try:
        return load_app(target)
    except (ImportError, ValueError) as exc:
        parser.error(str(exc))


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``grestws serve``: the exit code."""
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
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        parser.error("--loop uvloop needs uvloop: pip install 'grestws[uvloop]'")
    if args.transport == "picows":
        if importlib.util.find_spec("picows") is None:
            parser.error("--transport picows needs picows: pip install 'grestws[picows]'")
        if args.compression:
            parser.error("--compression: picows has no permessage-deflate")
    if args.metrics_port is not None and importlib.util.find_spec("prometheus_client") is None:
        parser.error("--metrics-port needs prometheus-client: pip install 'grestws[metrics]'")
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
    app = _load(parser, args.target)
    if app is None:
        return 2
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
    if args.recovery:
        app.rooms.recovery = Recovery(window=args.recovery)
    if args.access_log:
        app.interceptors.insert(0, AccessLog())
    stop_metrics: Callable[[], None] | None = None
    if args.metrics_port is not None:
        from grestws.prometheus import PrometheusMetrics, serve_metrics

        PrometheusMetrics().instrument(app)
        if worker is None:  # a worker's values go to the files its supervisor serves the sums of
            try:
                url, stop_metrics = serve_metrics(args.metrics_host or args.host, args.metrics_port)
            except OSError as exc:
                logger.error("cannot serve the metrics on port %s: %s", args.metrics_port, exc)
                return 1
            logger.info("metrics on %s", url)
    alone = isinstance(app.rooms.broker, LocalBroker)
    if app.rooms.recovery is not None and alone and worker is not None and worker[0] == 1:
        logger.warning(
            "recovery without a broker keeps each worker's history to itself: a client that "
            "reconnects to another worker is told it missed some; give --broker"
        )
    try:
        options: dict[str, Any] = {
            "ping_interval": args.ping_interval or None,
            "ping_timeout": args.ping_timeout or None,
            "compression": args.compression,
            "transport": args.transport,
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
        if stop_metrics is not None:
            stop_metrics()
    return 1 if forced else 0
