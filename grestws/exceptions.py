"""The grestws error tree.

Every exception grestws raises derives from :class:`GrestwsError`::

    GrestwsError
    ├── ApiError[D]                 an error envelope of PROTOCOL.md: raised by handlers,
    │   │                           sent on the wire, raised again on the calling side
    │   ├── ValidationError         VALIDATION_ERROR 422, data: list[Issue]
    │   ├── NotAuthorizedError      NOT_AUTHORIZED 401
    │   ├── ForbiddenError          FORBIDDEN 403
    │   ├── BadRequestError         BAD_REQUEST 400
    │   ├── NotFoundError           NOT_FOUND 404
    │   ├── ExistsError             EXISTS 409
    │   ├── PayloadTooLargeError    PAYLOAD_TOO_LARGE 413
    │   ├── RouteNotFoundError      ROUTE_NOT_FOUND 404
    │   ├── TooManyRequestsError    TOO_MANY_REQUESTS 429, data: RetryAfter | None
    │   └── ServerError             SERVER_ERROR 500
    ├── ConnectError                the socket could not be opened (also ConnectionError)
    ├── ConnectionClosedError       the socket closed (pending requests fail with it)
    ├── RequestTimeoutError         no answer within the request timeout (also TimeoutError)
    ├── HandshakeTimeoutError       no ``k``/``x`` within the handshake timeout (also TimeoutError)
    ├── FrameError                  a malformed frame (also ValueError)
    ├── ContractError               a contract declaration that cannot work (also TypeError)
    └── InvalidStateError           an operation that the current state forbids (also RuntimeError)

Applications define their own error types by subclassing :class:`ApiError`::

    class RoomFull(ApiError[RoomInfo], type="ROOM_FULL", status_code=400):
        \"\"\"The room has no free seat.\"\"\"

Errors raised by websockets and msgspec are translated into this tree at the boundary,
with the original exception chained as ``__cause__``.
"""

from __future__ import annotations

import builtins
import re
import types
import typing
from typing import Any, ClassVar, Generic, overload

import msgspec
from typing_extensions import TypeVar

__all__ = (
    "ApiError",
    "BadRequestError",
    "ConnectError",
    "ConnectionClosedError",
    "ConnectionLostError",
    "ContractError",
    "ExistsError",
    "ForbiddenError",
    "FrameError",
    "GrestwsError",
    "HandshakeTimeoutError",
    "InvalidStateError",
    "Issue",
    "NotAuthorizedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RequestTimeoutError",
    "RetryAfter",
    "RouteNotFoundError",
    "ServerError",
    "TooManyRequestsError",
    "UnavailableError",
    "ValidationError",
)

D = TypeVar("D", covariant=True, default=None)

_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")


class GrestwsError(Exception):
    """Base class of every exception raised by grestws."""


class ContractError(GrestwsError, TypeError):
    """A contract, method or error declaration that cannot work.

    Raised when the declaration is made (at import time of the contract module or when
    a server is built), never while serving.
    """


class InvalidStateError(GrestwsError, RuntimeError):
    """An operation the current lifecycle state does not allow (e.g. a call before connect)."""


class FrameError(GrestwsError, ValueError):
    """A frame that does not follow PROTOCOL.md; the session drops it and goes on."""


class ConnectError(GrestwsError, ConnectionError):
    """The socket could not be opened: refused, unreachable, or an HTTP error at the upgrade."""


class ConnectionClosedError(GrestwsError, ConnectionError):
    """The connection is closed, or closed while the operation was waiting.

    Attributes:
        code: The WebSocket close code, or ``None`` when the connection closed without one.
        reason: The close reason sent by the peer (may be empty).
    """

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(code, reason)

    def __str__(self) -> str:
        if self.code is None:
            return "connection closed"
        suffix = f": {self.reason}" if self.reason else ""
        return f"connection closed with code {self.code}{suffix}"


class ConnectionLostError(ConnectionClosedError):
    """The connection closed while a request was in flight: it was sent, and the peer may
    or may not have run it. Calling again is safe for an idempotent method (a client
    does that by itself for methods declared ``idempotent=True``); for any other, the
    caller decides, knowing it may run twice.
    """


class RequestTimeoutError(GrestwsError, TimeoutError):
    """A request got no response within its timeout. There is no cancel frame: the peer
    may still run the call, and its late response is ignored."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        super().__init__(path, timeout)

    def __str__(self) -> str:
        return f"{self.path}: no response within {self.timeout:g} s"


class HandshakeTimeoutError(GrestwsError, TimeoutError):
    """The server did not accept or refuse the handshake within the handshake timeout."""


class Issue(msgspec.Struct, frozen=True):
    """One problem found by validation: where (dot-separated ``path``, ``""`` for the top
    level), a machine-readable ``code`` and a human-readable ``message``."""

    path: str
    code: str
    message: str


class ApiError(GrestwsError, Generic[D]):
    """An error that travels on the wire as an error envelope.

    Subclasses name the wire ``type`` and ``status_code`` as class keywords and the type
    of their ``data`` as the generic argument (none means no data)::

        class RoomFull(ApiError[RoomInfo], type="ROOM_FULL", status_code=400): ...

        raise RoomFull("Room is full", data=RoomInfo(seats=8))

    A method lists the application errors it may raise in its ``errors``; a handler that
    raises an error its method does not declare sends ``SERVER_ERROR`` instead. The calling
    side raises the declared class again, with its typed ``data``.

    Attributes:
        type: The wire type, e.g. ``"ROOM_FULL"``.
        status_code: The HTTP-like status code carried in the envelope.
        data: The typed payload, ``None`` when the error has none.
        message: The ``displayMessage`` of the envelope, if any.
        ref: An opaque id that lets an operator find the logged details.
        timestamp: Milliseconds since the epoch when the error was raised by the peer.
        remote: True when the error was received from the peer rather than raised here. A
            handler that lets a remote error through sends it on only if its method lists
            the error's class in ``errors``; otherwise the caller gets SERVER_ERROR.
    """

    type: ClassVar[str] = "SERVER_ERROR"
    status_code: ClassVar[int] = 500
    data_type: ClassVar[Any] = None
    _data_decoder: ClassVar[msgspec.json.Decoder[Any] | None] = None

    @overload
    def __init__(
        self: ApiError[None],
        message: str | None = None,
        *,
        data: None = None,
        ref: str | None = None,
        timestamp: int | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        message: str | None = None,
        *,
        data: D,
        ref: str | None = None,
        timestamp: int | None = None,
    ) -> None: ...
    def __init__(
        self,
        message: str | None = None,
        *,
        data: Any = None,
        ref: str | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.message = message
        self._data = data
        self.ref = ref
        self.timestamp = timestamp
        self.remote = False
        super().__init__(message)

    @property
    def data(self) -> D:
        """The error's typed payload (``None`` for an error without data)."""
        return self._data  # type: ignore[no-any-return]

    def __init_subclass__(
        cls, *, type: str | None = None, status_code: int | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if type is not None:
            if not _TYPE_NAME.fullmatch(type):
                raise ContractError(f"error type {type!r} must match {_TYPE_NAME.pattern}")
            cls.type = type
        if status_code is not None:
            cls.status_code = status_code
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is ApiError:
                (cls.data_type,) = typing.get_args(base)

    @classmethod
    def define(
        cls, type: str, status_code: int, *, data: Any = None, doc: str | None = None
    ) -> builtins.type[ApiError[Any]]:
        """Define an error class in one line: ``RoomFull = ApiError.define("ROOM_FULL", 400)``.

        ``data`` is the type of the error's payload (any type msgspec can validate). The
        class form (``class RoomFull(ApiError[RoomInfo], type=..., status_code=...)``) is
        preferred where the payload type should be checked statically.
        """
        name = "".join(part.capitalize() for part in type.split("_")) + "Error"
        base: Any = cls if data is None else cls[data]  # type: ignore[index]
        namespace = {"__doc__": doc or f"{type} ({status_code})", "__module__": cls.__module__}
        return types.new_class(
            name,
            (base,),
            {"type": type, "status_code": status_code},
            lambda ns: ns.update(namespace),
        )

    @classmethod
    def data_decoder(cls) -> msgspec.json.Decoder[Any]:
        """The JSON decoder of this error's ``data``, typed by the class's data type (untyped
        for an error declared without one), built once per class.

        Raises:
            TypeError: msgspec cannot handle the data type.
        """
        decoder: msgspec.json.Decoder[Any] | None = cls.__dict__.get("_data_decoder")
        if decoder is None:
            decoder = msgspec.json.Decoder(Any if cls.data_type is None else cls.data_type)
            cls._data_decoder = decoder
        return decoder

    def __str__(self) -> str:
        text = f"{self.type} ({self.status_code})"
        detail = self._detail()
        if detail:
            text += f": {detail}"
        if self.ref:
            text += f" [ref {self.ref}]"
        return text

    def _detail(self) -> str | None:
        """What ``str()`` shows after the type and status: the message (a peer's, bounded
        and escaped: it may be anything)."""
        return self._message_shown()

    def _message_shown(self) -> str | None:
        message = self.message
        return _shown(message, _SHOWN_REMOTE) if message and self.remote else message

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.message!r}, data={self.data!r})"


_SHOWN_PATH = 80
_SHOWN_MESSAGE = 160
_SHOWN_REMOTE = 500


def _shown(text: str, limit: int) -> str:
    """``text`` for ``str()`` of an error: control characters escaped, at most ``limit``
    characters (a peer chooses it)."""
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ValidationError(ApiError[list[Issue]], type="VALIDATION_ERROR", status_code=422):
    """A payload failed validation; ``data`` lists the issues.

    ``str()`` shows the message and the first issue, e.g. ``VALIDATION_ERROR (422): Invalid
    input: text: Expected `str` of length >= 1 (and 2 more)``; the issue's path and message
    are cut short when long. ``data`` has every issue, as they came.
    """

    def _detail(self) -> str | None:
        data: Any = self._data  # a list of issues, unless made otherwise at run time
        issues = typing.cast("list[object]", data) if isinstance(data, list) else []
        first = issues[0] if issues else None
        if not isinstance(first, Issue):
            return self._message_shown()
        text = _shown(first.message, _SHOWN_MESSAGE)
        if first.path:
            text = f"{_shown(first.path, _SHOWN_PATH)}: {text}"
        if len(issues) > 1:
            text += f" (and {len(issues) - 1} more)"
        message = self._message_shown()
        return f"{message}: {text}" if message else text


class NotAuthorizedError(ApiError, type="NOT_AUTHORIZED", status_code=401):
    """No identity, or the identity could not be verified."""


class ForbiddenError(ApiError, type="FORBIDDEN", status_code=403):
    """The identity lacks the permission the call needs."""


class BadRequestError(ApiError, type="BAD_REQUEST", status_code=400):
    """The request is well-formed but cannot be served as asked."""


class NotFoundError(ApiError, type="NOT_FOUND", status_code=404):
    """The thing the request names does not exist."""


class ExistsError(ApiError, type="EXISTS", status_code=409):
    """The thing the request would create exists already."""


class PayloadTooLargeError(ApiError, type="PAYLOAD_TOO_LARGE", status_code=413):
    """The payload is over a size limit."""


class RouteNotFoundError(ApiError, type="ROUTE_NOT_FOUND", status_code=404):
    """The peer has no handler for the called method."""


class RetryAfter(msgspec.Struct, frozen=True, rename="camel"):
    """When a refused call may be tried again: ``{"retryAfterMs": 250}`` on the wire."""

    retry_after_ms: int


class TooManyRequestsError(ApiError[RetryAfter | None], type="TOO_MANY_REQUESTS", status_code=429):
    """A server limit refused the call: its rate, or how many calls it serves at once.

    ``data``, when present, says how many milliseconds to wait before trying again.
    """


class ServerError(ApiError, type="SERVER_ERROR", status_code=500):
    """The peer failed; ``ref`` names the log entry with the details, which never travel."""


class UnavailableError(ApiError, type="UNAVAILABLE", status_code=503):
    """The server is shutting down and did not run the call: it is safe to call again,
    on the next connection (a reconnecting client does that by itself)."""


STANDARD_ERRORS: dict[str, builtins.type[ApiError[Any]]] = {
    cls.type: cls
    for cls in (
        ValidationError,
        NotAuthorizedError,
        ForbiddenError,
        BadRequestError,
        NotFoundError,
        ExistsError,
        PayloadTooLargeError,
        RouteNotFoundError,
        TooManyRequestsError,
        ServerError,
        UnavailableError,
    )
}
"""The standard error types of PROTOCOL.md, by wire type."""
