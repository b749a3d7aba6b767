"""grestws on picows: the App of the ``grestws`` peer on grestws's picows transport.

The contract, the handlers, the limits and the fan-out are those of
:mod:`benchmarks.peers.grestws_peer`; the server is ``grestws.serve(app, host, port,
transport="picows")`` and the client ``grestws.connect(url, BenchApi, handlers=...,
dialer=PicowsDialer())``, with :class:`grestws.transports.picows.PicowsDialer`. The report
sets it against ``grestws`` (the same App on websockets) and against plain ``picows``.

Both sides need ``grestws.transports.picows``; a grestws without it makes either process
exit at once, saying so, rather than fail somewhere inside ``serve()``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

from benchmarks.payloads import MAX_MESSAGE_SIZE
from benchmarks.peers.grestws_peer import GrestwsPeer, bench_app, check_origin, serve_app
from benchmarks.shapes import main

TRANSPORT = "grestws.transports.picows"
"""The module that has to exist for this peer."""


def _dialer_class() -> Any:
    """``grestws.transports.picows.PicowsDialer``; exits when grestws has no picows transport."""
    try:
        module = importlib.import_module(TRANSPORT)
    except ImportError as exc:
        sys.exit(f"grestws-picows: cannot import {TRANSPORT} ({exc}): this grestws has no picows transport")
    dialer = getattr(module, "PicowsDialer", None)
    if dialer is None:
        sys.exit(f"grestws-picows: {TRANSPORT} has no PicowsDialer")
    return dialer


class GrestwsPicowsPeer(GrestwsPeer):
    """The ``grestws`` client, connecting with the picows dialer."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        dialer = _dialer_class()
        sized = "max_message_size" in inspect.signature(dialer).parameters
        self.options = {"dialer": dialer(max_message_size=MAX_MESSAGE_SIZE) if sized else dialer()}


async def _serve() -> int:
    return await serve_app(bench_app(), transport="picows")


if __name__ == "__main__":
    check_origin()
    _dialer_class()  # both sides: fail here, before the server or the client starts
    main(_serve, GrestwsPicowsPeer)
