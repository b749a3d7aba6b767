"""``grestws asyncapi`` and ``grestws typescript``: describe an App that ``grestws serve``
would serve (see :mod:`grestws.cli`, which loads it).

``grestws asyncapi`` writes the JSON to stdout, or to ``-o FILE``; ``grestws typescript``
writes the files to ``-o DIR`` and prints their paths. Both exit with 0, with 1 when the
output cannot be written, and with 2 for a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from grestws import __version__, typescript
from grestws.app import App
from grestws.asyncapi import asyncapi_document, dumps

__all__ = ("COMMANDS", "add_commands")

logger = logging.getLogger("grestws")

Command = Callable[[argparse.ArgumentParser, argparse.Namespace, App], int]


def add_commands(commands: Any) -> None:
    """Add ``asyncapi`` and ``typescript`` to the subcommands of ``grestws``."""
    asyncapi_cmd = commands.add_parser(
        "asyncapi", help="print the AsyncAPI 3.0 document of the App named by MODULE:ATTR"
    )
    asyncapi_cmd.add_argument("target", metavar="MODULE:ATTR", help="e.g. examples.chat.server:app")
    asyncapi_cmd.add_argument("-o", "--output", metavar="FILE", help="write the JSON to FILE, not to stdout")
    asyncapi_cmd.add_argument(
        "--title", metavar="T", help="the document's title (default: the contracts' names)"
    )
    asyncapi_cmd.add_argument(
        "--version",
        dest="api_version",
        default="1.0.0",
        metavar="V",
        help="the API's version (default 1.0.0)",
    )
    asyncapi_cmd.add_argument(
        "--server",
        dest="servers",
        type=_server,
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a server of the document, e.g. production=wss://chat.example.com (repeatable)",
    )

    typescript_cmd = commands.add_parser(
        "typescript", help="generate a TypeScript client for the App named by MODULE:ATTR"
    )
    typescript_cmd.add_argument("target", metavar="MODULE:ATTR", help="e.g. examples.chat.server:app")
    typescript_cmd.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="the folder to write the .ts files in"
    )


def _server(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url:
        raise argparse.ArgumentTypeError(f"expected NAME=URL, got {text!r}")
    return name, url


def _asyncapi(parser: argparse.ArgumentParser, args: argparse.Namespace, app: App) -> int:
    """``grestws asyncapi``: the exit code."""
    try:
        document = asyncapi_document(
            app, title=args.title, version=args.api_version, servers=dict(args.servers)
        )
    except ValueError as exc:
        parser.error(f"--server: {exc}")
    text = dumps(document).encode()
    if args.output is None:
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
        return 0
    try:
        Path(args.output).write_bytes(text)
    except OSError as exc:
        logger.error("cannot write %s: %s", args.output, exc)
        return 1
    return 0


def _typescript(parser: argparse.ArgumentParser, args: argparse.Namespace, app: App) -> int:
    """``grestws typescript``: write the files, print their paths; the exit code."""
    try:
        files = typescript.generate(app, version=__version__, source=args.target)
    except (TypeError, ValueError) as exc:
        parser.error(f"{args.target}: {exc}")
    try:
        written = typescript.write(files, args.output)
    except OSError as exc:
        logger.error("cannot write to %s: %s", args.output, exc)
        return 1
    for path in written:
        print(path)
    return 0


COMMANDS: Mapping[str, Command] = {"asyncapi": _asyncapi, "typescript": _typescript}
"""The commands by name: each runs on the App the target names, and gives the exit code."""
