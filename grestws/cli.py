"""``grestws serve MODULE:ATTR``: serve an :class:`~grestws.app.App` from the command line.

SIGINT or SIGTERM starts a graceful shutdown (calls in flight get the App's
``shutdown_timeout``); a second one during that shutdown forces it: the calls still in
flight are cancelled and the connections closed at once.

Exit codes: 0 stopped by a signal after a graceful shutdown; 1 the address could not be
bound, or the shutdown was forced by a second signal (calls were cancelled unanswered);
2 a usage error: bad arguments, a module that is not found or fails to import, an
attribute that is no App, an App that cannot be served.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import signal
import sys
import sysconfig
import traceback
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from grestws.app import App
from grestws.exceptions import ContractError
from grestws.server import Server, serve

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


async def run(app: App, host: str, port: int, **options: Any) -> bool:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully; a second signal
    during the shutdown forces it. ``options`` go to :func:`grestws.serve`.

    Returns:
        True when the shutdown was forced (calls in flight cancelled), else False.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    force = asyncio.Event()

    def on_signal() -> None:
        (force if stop.is_set() else stop).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    server = await serve(app, host, port, **options)
    for url in server.urls():
        logger.info("listening on %s", url)
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
    logger.info("stopped")
    return forced


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
    await closing
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


def main(argv: Sequence[str] | None = None) -> int:
    """The ``grestws`` command."""
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
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="logging level (default INFO)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if "" not in sys.path:
        sys.path.insert(0, "")
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        parser.error("--loop uvloop needs uvloop: pip install 'grestws[uvloop]'")
    module_name = args.target.partition(":")[0]
    failure = _import(module_name) if module_name else None
    if failure is not None:
        logger.error("%s", failure)
        return 2
    try:
        app = load_app(args.target)
    except (ImportError, ValueError) as exc:
        parser.error(str(exc))
    try:
        options = {
            "ping_interval": args.ping_interval or None,
            "ping_timeout": args.ping_timeout or None,
            "compression": args.compression,
        }
        forced = run_loop(run(app, args.host, args.port, **options), args.loop)
    except ImportError:
        parser.error("--loop uvloop needs uvloop: pip install 'grestws[uvloop]'")
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    except ContractError as exc:
        logger.error("%s", exc)
        return 2
    return 1 if forced else 0
