"""What handlers can read about the call they serve: the connection, the upgrade request
it was opened with, and the message.

Both are context variables, set by grestws before a handler runs, so they are right in the
handler and in anything it awaits, and never leak between concurrent connections or calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Generic, Literal, TypeVar, overload

import msgspec

from grestws.exceptions import InvalidStateError

__all__ = (
    "ConnectRequest",
    "Headers",
    "Connection",
    "ContextKey",
    "MessageInfo",
    "current_connection",
    "current_message",
)


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
        self.side: Literal["server", "client"] = side

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.path} {self.remote_address}>"


class Headers(Mapping[str, str]):
    """HTTP headers with case-insensitive names. A header sent more than once has its
    values joined: with ``"; "`` for ``Cookie``, with ``", "`` for any other.

    Args:
        items: ``(name, value)`` pairs as they came.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        joined: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            if key in joined:
                joined[key] += ("; " if key == "cookie" else ", ") + value
            else:
                joined[key] = value
        self._items = joined

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class ConnectRequest(msgspec.Struct, frozen=True):
    """The upgrade request a connection was opened with, as the transport saw it.

    Attributes:
        path: The URL path without the query (``/ws/chat``).
        query: The query parameters; a repeated name keeps its last value.
        headers: The HTTP headers of the upgrade request (:class:`Headers`: names are
            case-insensitive, repeated headers joined).
        remote_address: The peer's address, or ``None`` when unknown.
    """

    path: str
    query: Mapping[str, str] = msgspec.field(default_factory=dict[str, str])
    headers: Mapping[str, str] = msgspec.field(default_factory=Headers)
    remote_address: Any = None


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


T = TypeVar("T")
D = TypeVar("D")

_MISSING: Any = object()


class ContextKey(Generic[T]):
    """A typed value that belongs to one connection (or one task), read anywhere below it.

    Server-side middleware sets a key while a connection is accepted; every handler of
    that connection then reads it, and concurrent connections never see each other's
    values::

        USER = grestws.ContextKey[User]("user")

        class Auth(grestws.Middleware):
            async def process(self, handshake: grestws.ServerHandshake) -> None:
                USER.set(await load_user(handshake.headers.get("authorization")))

        async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
            user = USER.get()

    On the client, a key set by the task that connects is what client-side middleware
    reads in ``update_handshake``. A key is a :class:`contextvars.ContextVar` underneath,
    with the same rules: a value set in a task stays in that task.
    """

    __slots__ = ("_var", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._var: ContextVar[T] = ContextVar(f"grestws.{name}")

    def __repr__(self) -> str:
        return f"<ContextKey {self.name}>"

    @overload
    def get(self) -> T: ...
    @overload
    def get(self, default: D) -> T | D: ...
    def get(self, default: Any = _MISSING) -> Any:
        """The value; ``default`` when none was set.

        Raises:
            InvalidStateError: no value was set and no default was given.
        """
        try:
            return self._var.get()
        except LookupError:
            if default is _MISSING:
                raise InvalidStateError(f"context key {self.name!r} is not set here") from None
            return default

    def set(self, value: T) -> None:
        """Set the value for the current context: in handshake middleware, for the connection."""
        self._var.set(value)
