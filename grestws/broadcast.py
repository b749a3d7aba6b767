"""Sending one fire-and-forget call to many connections, encoded once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Concatenate, TypeVar

import msgspec
from typing_extensions import ParamSpec

from grestws.connections import ServerConnection
from grestws.contract.methods import MethodKind
from grestws.exceptions import ContractError
from grestws.protocol import codec

__all__ = ("broadcast",)

S2C = TypeVar("S2C")
P = ParamSpec("P")

_encoder = msgspec.json.Encoder()


def broadcast(
    connections: Iterable[ServerConnection[S2C]],
    method: Callable[Concatenate[S2C, P], Awaitable[None]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> int:
    """Send the fire-and-forget call ``method(*args)`` to every open connection.

    ``grestws.broadcast(room, ChatClient.new_message, message)`` encodes the frame once
    and writes the same bytes to every connection without waiting. One slow member never
    holds up the others: a connection with more than the limits' ``push_buffer`` unread
    is skipped (counted as ``push_dropped``), and one over ``max_outgoing_buffer`` is
    closed with 1013. Closed connections are skipped.

    It is synchronous, so it cannot be cancelled half-way; it may be called from any task.

    Returns:
        How many connections the frame was written to.

    Raises:
        ContractError: ``method`` is a request (a request needs an answer per connection:
            call it through each connection's ``outgoing``), or not a method of the
            connections' contract.
    """
    targets = list(connections)
    if not targets:
        return 0
    spec = targets[0].schema.contract.server_to_client.spec_for(method)
    if spec.kind is not MethodKind.NOTIFY:
        raise ContractError(f"{spec.path} is a request; only @notify methods can be broadcast")
    arg: Any = args[0] if args else next(iter(kwargs.values()), None)
    frame = codec.encode_message(spec.prefix, _encoder.encode(arg) if spec.has_input else b"")
    written = 0
    for conn in targets:
        if conn.push(frame):
            written += 1
    return written
