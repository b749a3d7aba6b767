"""Sending one fire-and-forget call to many connections, encoded once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Concatenate, TypeVar

import msgspec
from typing_extensions import ParamSpec
from websockets.asyncio.connection import Connection as WebSocket
from websockets.asyncio.server import broadcast as ws_broadcast

from grestws._websockets import WebsocketsTransport
from grestws.app import ServerConnection
from grestws.contract.methods import MethodKind
from grestws.exceptions import ConnectionClosedError, ContractError

__all__ = ("broadcast",)

S2C = TypeVar("S2C")
P = ParamSpec("P")

logger = logging.getLogger("grestws")

_encoder = msgspec.json.Encoder()
_pending_sends: set[asyncio.Task[None]] = set()


def broadcast(
    connections: Iterable[ServerConnection[S2C]],
    method: Callable[Concatenate[S2C, P], Awaitable[None]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> int:
    """Send the fire-and-forget call ``method(*args)`` to every open connection.

    ``grestws.broadcast(room, ChatClient.new_message, message)`` encodes the frame once
    and hands the same bytes to every connection without waiting: there is no
    backpressure, so a client that reads slower than the server broadcasts buffers on the
    server until its pings time out. Closed connections are skipped.

    It is synchronous, so it cannot be cancelled half-way; it may be called from any task.

    Returns:
        How many connections the frame was handed to.

    Raises:
        ContractError: ``method`` is a request (a request needs an answer per connection:
            call it through each connection's ``outgoing``), or not a method of the
            connections' contract.
    """
    targets = [conn for conn in connections if conn.is_open]
    if not targets:
        return 0
    spec = targets[0]._session.outgoing.spec_for(method)
    if spec.kind is not MethodKind.NOTIFY:
        raise ContractError(f"{spec.path} is a request; only @notify methods can be broadcast")
    arg: Any = args[0] if args else next(iter(kwargs.values()), None)
    frame = spec.prefix + b":" + (_encoder.encode(arg) if spec.has_input else b"")
    sockets: list[WebSocket] = []
    for conn in targets:
        transport = conn._session.transport
        if type(transport) is WebsocketsTransport:
            sockets.append(transport.ws)
        else:
            task = asyncio.ensure_future(_send(transport.send(frame)))
            _pending_sends.add(task)
            task.add_done_callback(_pending_sends.discard)
    if sockets:
        ws_broadcast(sockets, frame, text=True)
    return len(targets)


async def _send(sending: Awaitable[None]) -> None:
    try:
        await sending
    except ConnectionClosedError:
        pass
    except Exception:
        logger.exception("broadcast: send failed")
