"""What handlers can read about the call they serve: the connection and the message.

Both are context variables, set by grestws before a handler runs, so they are right in the
handler and in anything it awaits, and never leak between concurrent connections or calls.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Literal

import msgspec

from grestws.exceptions import InvalidStateError

__all__ = ("Connection", "MessageInfo", "current_connection", "current_message")


class Connection:
    """What every connection, on either side, tells about itself.

    Attributes:
        id: An id unique to this connection (random, 32 hex digits).
        path: The URL path of the schema (``/ws/chat``).
        remote_address: The peer's address as the transport reports it, e.g.
            ``("127.0.0.1", 51234)``; ``None`` when unknown.
        side: ``"server"`` or ``"client"``.
    """

    __slots__ = ("__weakref__", "id", "path", "remote_address", "side")

    def __init__(self, id: str, path: str, remote_address: Any, side: Literal["server", "client"]) -> None:
        self.id = id
        self.path = path
        self.remote_address = remote_address
        self.side = side

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.path} {self.remote_address}>"


class MessageInfo(msgspec.Struct, frozen=True, gc=False):
    """The incoming call a handler serves: its wire ``path`` and, for a request, its ``id``."""

    path: str
    id: int | None = None


_connection: ContextVar[Connection] = ContextVar("grestws.connection")
_message: ContextVar[MessageInfo] = ContextVar("grestws.message")


def current_connection() -> Connection:
    """The connection whose handler is running.

    Raises:
        InvalidStateError: called outside a grestws handler.
    """
    try:
        return _connection.get()
    except LookupError:
        raise InvalidStateError("current_connection() is only set inside a grestws handler") from None


def current_message() -> MessageInfo:
    """The message whose handler is running.

    Raises:
        InvalidStateError: called outside a grestws handler.
    """
    try:
        return _message.get()
    except LookupError:
        raise InvalidStateError("current_message() is only set inside a grestws handler") from None
