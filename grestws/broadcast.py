"""Sending one fire-and-forget call to many connections, encoded once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Concatenate, TypeVar

from typing_extensions import ParamSpec

from grestws.connections import ServerConnection
from grestws.rooms import push_frame

__all__ = ("broadcast",)

S2C = TypeVar("S2C")
P = ParamSpec("P")


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
    closed with 1013. Closed connections are skipped. It reaches the connections given,
    in this process; ``app.rooms`` sends to rooms, users and everyone across a cluster.

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
    arg: Any = args[0] if args else next(iter(kwargs.values()), None)
    frame = push_frame(spec, arg)
    written = 0
    for conn in targets:
        if conn.push(frame):
            written += 1
    return written
