"""Hooks around every call: interceptors.

An :class:`Interceptor` runs around each call a connection serves (``incoming``) and each
call it makes (``outgoing``), on the server and on the client. It sees the :class:`Call`
(the method, the connection, the identity, the argument), awaits ``proceed()`` to let the
call go on (the next interceptor, then the handler or the send), and sees what came of it:
the result it returns, or the exception it raises. It may short-circuit: raise an
:class:`~grestws.ApiError` without proceeding, and the caller gets that error. ::

    async def audit(call: grestws.Call, proceed: grestws.Proceed) -> Any:
        started = time.perf_counter()
        try:
            return await proceed()
        finally:
            log.info("%s %s %.1f ms", call.identity, call.path, (time.perf_counter() - started) * 1e3)

    app = grestws.App(interceptors=[audit])

Interceptors run in the order given, the first outermost. On the server, an incoming
call's interceptors run in the call's own task and context, after the limits, the
permission check and the payload's validation (a call refused by those never reaches
them; the App's incidents see it), so ``call.arg`` is the typed argument. What an
incoming request's interceptor raises is what the client is answered: an error the
method declares or one every method may answer (``FORBIDDEN``, ``TOO_MANY_REQUESTS``,
``UNAVAILABLE``, ...) as it is, anything else as ``SERVER_ERROR`` with a ref.

Pushes sent through :class:`~grestws.Rooms` are written once for many connections and are
no call of one connection: interceptors do not see them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from grestws.contract.methods import MethodKind
from grestws.exceptions import (
    ApiError,
    ConnectionClosedError,
    ConnectionLostError,
    RequestTimeoutError,
)

if TYPE_CHECKING:
    from grestws.context import Connection
    from grestws.contract.contract import Caller
    from grestws.contract.methods import MethodSpec
    from grestws.permissions import Identity

__all__ = ("Call", "Direction", "Interceptor", "Intercepted", "Proceed", "outcome", "run_intercepted")

Direction = Literal["incoming", "outgoing"]
"""``incoming``: a call this side serves; ``outgoing``: a call this side makes."""

Proceed = Callable[[], Awaitable[Any]]
"""What an interceptor awaits to let the call go on; it returns the call's result."""


class Call:
    """One call, as interceptors see it.

    Attributes:
        method: The method's spec: ``method.path`` (``ChatApi.sendMessage``),
            ``method.wire_name`` (``sendMessage``), ``method.py_name``, ``method.kind``.
        direction: ``incoming`` (served here) or ``outgoing`` (made from here).
        connection: The connection it travels on (a :class:`~grestws.ServerConnection`
            on the server, the client's connection on a client).
        identity: Who the connection acts for (the server's view; ``None`` on a client
            and for an anonymous connection).
        arg: The call's argument (``None`` for a method without input).
        request_id: The wire id of an incoming request; ``None`` for a fire-and-forget
            call and for outgoing calls (their id is chosen when the frame is written).
    """

    __slots__ = ("arg", "connection", "direction", "identity", "method", "request_id")

    def __init__(
        self,
        method: MethodSpec,
        direction: Direction,
        connection: Connection,
        identity: Identity | None,
        arg: Any,
        request_id: int | None = None,
    ) -> None:
        self.method = method
        self.direction: Direction = direction
        self.connection = connection
        self.identity = identity
        self.arg = arg
        self.request_id = request_id

    @property
    def path(self) -> str:
        """The method's wire path (``ChatApi.sendMessage``)."""
        return self.method.path

    @property
    def side(self) -> Literal["server", "client"]:
        """Which side of the connection this is."""
        return self.connection.side

    @property
    def is_request(self) -> bool:
        """Whether the call is answered (a request), not fire-and-forget."""
        return self.method.kind is MethodKind.REQUEST

    def __repr__(self) -> str:
        return f"<Call {self.direction} {self.path} on {self.connection.id}>"


class Interceptor(Protocol):
    """``await interceptor(call, proceed)``: runs around one call.

    Await ``proceed()`` at most once and return its result (or another value of the
    method's result type); raise an :class:`~grestws.ApiError` to short-circuit. An
    interceptor runs in the call's task: cancelling the call cancels it, and interceptors
    of different calls run concurrently.
    """

    def __call__(self, call: Call, proceed: Proceed, /) -> Awaitable[Any]: ...


def outcome(error: BaseException | None) -> str:
    """The outcome of a call that raised ``error`` (``None``: it succeeded), as metrics and
    logs label it: ``OK``, the error's wire type (``VALIDATION_ERROR``, a declared type),
    ``TIMEOUT``, ``CONNECTION_LOST``, ``CONNECTION_CLOSED``, ``CANCELLED``, or
    ``SERVER_ERROR`` for any other exception."""
    if error is None:
        return "OK"
    if isinstance(error, ApiError):
        return error.type
    if isinstance(error, RequestTimeoutError):
        return "TIMEOUT"
    if isinstance(error, ConnectionLostError):
        return "CONNECTION_LOST"
    if isinstance(error, ConnectionClosedError):
        return "CONNECTION_CLOSED"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "SERVER_ERROR"


def run_intercepted(interceptors: Sequence[Interceptor], call: Call, last: Proceed) -> Awaitable[Any]:
    """Run ``call`` through ``interceptors``, the first outermost, then ``last``: what to
    await for the call's result."""
    if len(interceptors) == 1:
        return interceptors[0](call, last)
    return _Step(interceptors, call, last, 0)()


class _Step:
    """``proceed`` for interceptor ``index``: runs the next one, or ``last``."""

    __slots__ = ("call", "index", "interceptors", "last")

    def __init__(self, interceptors: Sequence[Interceptor], call: Call, last: Proceed, index: int) -> None:
        self.interceptors = interceptors
        self.call = call
        self.last = last
        self.index = index

    def __call__(self) -> Awaitable[Any]:
        index = self.index
        if index == len(self.interceptors):
            return self.last()
        return self.interceptors[index](self.call, _Step(self.interceptors, self.call, self.last, index + 1))


def _nobody() -> Identity | None:
    return None


class Intercepted:
    """A :class:`~grestws.contract.contract.Caller` that runs the outgoing calls of one
    connection through interceptors before ``caller`` sends them.

    Args:
        caller: What sends (a session, or a client's link).
        interceptors: Run around each call, the first outermost.
        connection: The connection the calls travel on.
        identity: Gives who the connection acts for now (``None`` on a client).
    """

    __slots__ = ("caller", "connection", "identity", "interceptors")

    def __init__(
        self,
        caller: Caller,
        interceptors: Sequence[Interceptor],
        connection: Connection,
        identity: Callable[[], Identity | None] = _nobody,
    ) -> None:
        self.caller = caller
        self.interceptors = tuple(interceptors)
        self.connection = connection
        self.identity = identity

    def request(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Awaitable[Any]:
        call = Call(spec, "outgoing", self.connection, self.identity(), arg)
        return run_intercepted(self.interceptors, call, lambda: self.caller.request(spec, arg, timeout))

    async def notify(self, spec: MethodSpec, arg: Any) -> None:
        call = Call(spec, "outgoing", self.connection, self.identity(), arg)
        await run_intercepted(self.interceptors, call, lambda: self.caller.notify(spec, arg))
