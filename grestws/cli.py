"""``grestws serve MODULE:ATTR``: serve an :class:`~grestws.app.App` from the command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from grestws.app import App
from grestws.exceptions import ContractError
from grestws.server import serve

__all__ = ("load_app", "main")

logger = logging.getLogger("grestws")


def load_app(target: str) -> App:
    """Import ``MODULE:ATTR`` and return the App it names (a callable returning one is called).

    Raises:
        ValueError: the target is not ``MODULE:ATTR``, or names something that is no App.
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


async def run(app: App, host: str, port: int, **options: Any) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully; ``options`` go
    to :func:`grestws.serve`."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await serve(app, host, port, **options)
    for url in server.urls():
        logger.info("listening on %s", url)
    try:
        await stop.wait()
        logger.info("shutting down")
    finally:
        await server.close()
    logger.info("stopped")


def run_loop(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run ``main`` on the standard event loop or on uvloop.

    Raises:
        ImportError: uvloop was asked for and is not installed.
    """
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


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
    serve_cmd.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
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
        run_loop(run(app, args.host, args.port, **options), args.loop)
    except ImportError:
        parser.error("--loop uvloop needs uvloop: pip install 'grestws[uvloop]'")
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    except ContractError as exc:
        logger.error("%s", exc)
        return 2
    return 0
