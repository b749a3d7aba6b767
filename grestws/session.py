"""The conversation on one open connection, whatever carries it.

:class:`Session` numbers and matches requests, dispatches incoming calls concurrently,
applies timeouts, answers pings and fails everything pending when the connection goes. It
reads and writes through a :class:`Transport`, so the same code runs over websockets, over
an ASGI server or over an in-memory pipe. Both sides use it: the server's session serves
``client_to_server`` and calls ``server_to_client``; the client's does the opposite.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import math
import types
from collections.abc import Awaitable, Callable, Mapping, Sequence
from time import monotonic as _monotonic
from typing import Any, TypeGuard

from grestws import inline
from grestws.context import Connection, MessageInfo, _connection, _message
from grestws.contract.contract import CallRoute, ContractHalf, Entry, call_route
from grestws.contract.envelopes import error_envelope, read_response, ref_of
from grestws.contract.methods import MethodSpec
from grestws.deadlines import Deadlines
from grestws.exceptions import (
    ApiError,
    ConnectionClosedError,
    ConnectionLostError,
    ForbiddenError,
    FrameError,
    GrestwsError,
    Issue,
    NotAuthorizedError,
    RequestTimeoutError,
    RetryAfter,
    RouteNotFoundError,
    ServerError,
    TooManyRequestsError,
    UnavailableError,
    ValidationError,
)
from grestws.incidents import Incident, IncidentKind, Incidents
from grestws.interceptors import Call, Interceptor, run_intercepted
from grestws.limits import Gate
from grestws.permissions import Identity
from grestws.protocol import codec
from grestws.protocol.depth import too_deep
from grestws.protocol.frames import (
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN_LATER,
    PONG,
    Frame,
    FrameType,
)
from grestws.protocol.positions import Positions
from grestws.transports import Transport

__all__ = ("Session",)

logger = logging.getLogger("grestws")

Handler = Callable[..., Awaitable[Any]]


_decode_frame = codec.decode_frame
_VIEW_FROM = codec.VIEW_FROM
_M = FrameType.MSG.value[0]
_EMPTY = b""  # b"" + raw: raw as bytes, at the cost of a copy only when it is a bytearray
_REQ = FrameType.REQ
_MSG = FrameType.MSG
_RES = FrameType.RES
_PING = FrameType.PING


_Coroutine: type[Any] = types.CoroutineType


async def _awaiting(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _is_api_error(error: Exception) -> TypeGuard[ApiError[Any]]:
    return isinstance(error, ApiError)


class Session:
    """Requests, dispatch, timeouts and limits on one connection.

    Args:
        transport: Where frames come from and go to.
        connection: What handlers see as :func:`~grestws.current_connection`.
        incoming: The contract half this side serves.
        outgoing: The contract half this side calls.
        incidents: Where problems no caller can be told of go (a malformed frame, a bad
            fire-and-forget payload, a failed handler, a limit hit): counted, logged
            without flooding, handed to the hook.
        gate: The server's limits for this peer; ``None`` (a client) applies none but
            the nesting depth.
        max_depth: Deepest nesting accepted in an incoming payload, when there is no gate.
        interceptors: Run around every incoming call the handlers serve (see
            :mod:`grestws.interceptors`), the first outermost.

    Concurrency: every incoming call runs in a task of its own, started at once (it is
    scheduled on the loop only if it has to wait: see :mod:`grestws.inline`); outgoing
    calls may be made from any number of tasks at once. Responses are matched by id, in
    any order.
    """

    __slots__ = (
        "_cancelled",
        "_context",
        "_dropped_pushes",
        "_dropping",
        "_handlers",
        "_last_id",
        "_loop",
        "_max_buffer",
        "_max_depth",
        "_max_dropped_pushes",
        "_max_in_flight",
        "_message_contexts",
        "_messages",
        "_overdue",
        "_pending",
        "_push_buffer",
        "_routes",
        "_target",
        "_tasks",
        "_timeouts",
        "close_code",
        "close_reason",
        "closed",
        "connection",
        "draining",
        "gate",
        "identity",
        "incidents",
        "incoming",
        "interceptors",
        "outgoing",
        "positions",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        connection: Connection,
        *,
        incoming: ContractHalf,
        outgoing: ContractHalf,
        incidents: Incidents | None = None,
        gate: Gate | None = None,
        max_depth: int = 64,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self.transport = transport
        self.interceptors = tuple(interceptors)
        self.connection = connection
        self.incoming = incoming
        self.outgoing = outgoing
        self.incidents = incidents or Incidents()
        self.gate = gate
        self.draining = False
        self.identity: Identity | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = False
        self._handlers: Mapping[str, Entry] = {}
        self._routes: dict[str, CallRoute] = {}
        """How a call reaches its handler, by path: made on a method's first call."""
        self._messages: dict[bytes, CallRoute] = {}
        """The routes a message may take without decoding its frame, by
        :func:`~grestws.protocol.codec.message_key`: those with no checks on the way but
        the gate (see :meth:`_route`), once a message took them."""
        self._target: object = None
        self._pending: dict[int, asyncio.Future[bytes | memoryview]] = {}
        self._loop = asyncio.get_running_loop()
        # The requests this side made that wait for an answer, each held to its timeout;
        # made by the first request with a timeout (a server seldom makes one).
        self._timeouts: Deadlines[int, tuple[str, float]] | None = None
        # Incoming calls in flight, each held to its deadline (math.inf: none).
        self._tasks: Deadlines[asyncio.Task[None], None] = Deadlines(self._loop, self._overrun)
        self._overdue: set[asyncio.Task[None]] | None = None  # made when a deadline first passes
        self._cancelled: set[asyncio.Task[None]] | None = None  # cancelled by cancel_tasks, answered
        self._last_id = 0
        self._context: contextvars.Context | None = None
        self._message_contexts: dict[str, contextvars.Context] = {}
        self._dropping = False
        limits = gate.limits if gate is not None else None
        self._max_depth = limits.max_depth if limits is not None else max_depth
        self._max_in_flight = limits.max_in_flight if limits is not None else None
        self._max_buffer = limits.max_outgoing_buffer if limits is not None else None
        self._push_buffer = limits.push_buffer if limits is not None else None
        self._max_dropped_pushes = limits.max_dropped_pushes if limits is not None else None
        self._dropped_pushes = 0
        self.positions: Positions | None = None
        """A client's stream positions, when it asked for recovery: pushes then carry
        one, and a push at or before its node's last position is skipped."""

    # -- handlers ---------------------------------------------------------------------

    def bind(self, handler: object) -> None:
        """Serve the incoming methods that ``handler`` implements (one handler a session)."""
        self._target = handler
        table = self.incoming.bind(handler)
        self._handlers = {**self._handlers, **table} if self._handlers else table
        self._forget_routes()

    def bind_one(self, spec: MethodSpec, fn: Handler) -> None:
        """Serve one incoming method with the function ``fn``."""
        self._handlers = {**self._handlers, spec.path: (spec, fn, False)}
        self._forget_routes()

    def _forget_routes(self) -> None:
        if self._routes:
            self._routes = {}
            self._messages = {}

    def _route(self, path: str) -> CallRoute | None:
        """How a call to ``path`` reaches its handler (None: nothing serves it), kept for
        the next call. Routes are made on a method's first call, so a connection holds
        none for the methods it never calls. Without interceptors (with them a message is
        served as a request is) a message's route is also keyed by its frame's head,
        unless its method needs a permission or a depth check."""
        entry = self._handlers.get(path)
        if entry is None:
            return None
        route = self._routes[path] = call_route(entry, self._target)
        spec = route[0]
        if not self.interceptors and not spec.gated and not spec.deep_input:
            self._messages[spec.message_key] = route
        return route

    # -- reading ----------------------------------------------------------------------

    async def run(self) -> None:
        """Dispatch every incoming frame until the transport closes, then fail what is
        pending.

        Cancelling it stops nothing but the wait: frames keep being dispatched until the
        transport closes. The caller owns the transport.
        """
        self.transport.deliver_to(self.receive)
        try:
            code, reason = await self.transport.wait_closed()
        except BaseException:
            self.connection_lost(None, "session stopped")
            raise
        self.connection_lost(code, reason)

    def receive(self, raw: bytes | bytearray) -> None:
        """Handle one incoming frame; never raises for anything the peer sent."""
        if self._dropping:
            return  # frames the peer sent before it was dropped are not served
        messages = self._messages
        if messages and raw and raw[0] == _M and len(raw) < _VIEW_FROM:
            # The usual frame, a small message without a stream position, goes straight to
            # its handler: ``m:<path>::<data>``.
            head, _, data = (_EMPTY + raw).partition(b"::")  # bytes, as a key must be
            route = messages.get(head)
            if route is not None:
                if self.gate is None or not self._limited(route[0], None, route[0].path):
                    self._deliver(route, data)
                return
        positions = self.positions
        try:
            frame = _decode_frame(raw, positions is not None)
        except FrameError as exc:
            if self.gate is None or self._admitted():
                self.report(
                    IncidentKind.MALFORMED_FRAME,
                    f"dropped a malformed frame ({exc}): {bytes(raw[:64])!r}",
                    exc,
                )
            return
        kind = frame.type
        if kind is _RES:
            future = self._pending.pop(frame.id or 0, None)
            if future is not None:
                if not future.done():
                    future.set_result(frame.data)
            elif self.gate is not None:
                self._admitted()  # an answer to nothing asked (or asked too long ago)
        elif kind is _REQ:
            self._dispatch(frame)
        elif kind is _MSG:
            if positions is not None and frame.position and not positions.take(frame.position):
                return  # a replayed push that arrived already
            self._dispatch(frame)
        elif (self.gate is None or self._admitted()) and kind is _PING:  # p o h k x: charged
            self._write_now(PONG)
        # o frames only prove liveness; h k x after the handshake mean nothing.

    def _dispatch(self, frame: Frame) -> None:
        """Start serving an incoming call, or answer it at once when it cannot be served."""
        path = frame.path
        request_id = frame.id
        route = self._routes.get(path) or self._route(path)
        spec = route[0] if route is not None else self.incoming.by_path.get(path)
        if self.gate is not None and self._limited(spec, request_id, path):
            return
        if spec is not None and spec.gated and not spec.permission.allows(self.identity):
            self._refuse_call(spec, request_id)  # before ROUTE_NOT_FOUND: gated routes stay hidden
            return
        if route is None:
            missing = RouteNotFoundError(f"Route not found: {path}")
            self._refuse(IncidentKind.UNKNOWN_ROUTE, path, request_id, missing, "no such route")
            return
        data = frame.data
        if route[0].deep_input and len(data) > self._max_depth and too_deep(data, self._max_depth):
            invalid = self._too_deep("Invalid input")
            self._refuse(IncidentKind.INVALID_PAYLOAD, path, request_id, invalid, "too deep")
            return
        if request_id is None:  # a message: its context is made once per method
            if not self.interceptors:
                self._deliver(route, data)
                return
            context = self._message_contexts.get(path) or self._message_context(path)
        else:
            context = self._context or self.base_context()
        task = inline.start(self._loop, self._serve(route, request_id, data), context.copy())
        if task is not None:  # it has to wait
            self._track(task, route[0].deadline)

    def _limited(self, spec: MethodSpec | None, request_id: int | None, path: str) -> bool:
        """Charge a call to the gate; refuse it (and say so) over a rate or the in-flight cap."""
        gate = self.gate
        assert gate is not None
        wait = gate.admit(spec)
        cap = self._max_in_flight
        if wait or (spec is not None and cap is not None and len(self._tasks) >= cap):
            self._over_limit(wait, spec, request_id, path)
            return True
        return False

    def _admitted(self) -> bool:
        """Charge a frame that is no call (a ping, a malformed frame) to the rate."""
        gate = self.gate
        assert gate is not None
        wait = gate.admit(None)
        if wait:
            self._over_limit(wait, None, None, "")
        return not wait

    def _over_limit(self, wait: float, spec: MethodSpec | None, request_id: int | None, path: str) -> None:
        """Refuse a frame over a rate (``wait`` seconds until it would pass) or over the
        in-flight cap (``wait`` 0); close a peer that keeps going."""
        gate = self.gate
        assert gate is not None
        if wait:
            kind = IncidentKind.RATE_LIMITED
            error = TooManyRequestsError("Rate limit exceeded", data=RetryAfter(math.ceil(wait * 1000)))
        else:
            kind = IncidentKind.IN_FLIGHT_LIMITED
            error = TooManyRequestsError(f"Over {self._max_in_flight} calls in flight", data=None)
        if gate.strike():
            self.close_soon(CLOSE_POLICY, "Too many requests", IncidentKind.POLICY_CLOSE)
        elif path:
            self._refuse(kind, path, request_id, error, error.message or "")
        else:
            self.report(kind, f"dropped a frame: {error.message}", error)

    def _refuse_call(self, spec: MethodSpec, request_id: int | None) -> None:
        """Answer a call its caller may not make: NOT_AUTHORIZED without an identity,
        FORBIDDEN with one that lacks the scope. A message is dropped and reported."""
        error: ApiError[Any]
        if self.identity is None:
            error = NotAuthorizedError(f"{spec.path} needs an identity")
        else:
            error = ForbiddenError(f"{spec.path} needs {spec.permission!r}")
        self._refuse(IncidentKind.NOT_PERMITTED, spec.path, request_id, error, error.message or "")

    def _refuse(
        self, kind: IncidentKind, path: str, request_id: int | None, error: ApiError[Any], why: str
    ) -> None:
        """Report a call that will not be served; answer it with ``error`` if it is a request."""
        if request_id is None:
            self.report(kind, f"dropped a message to {path}: {why}", error, path)
        else:
            self.report(kind, f"answered {path} with {error.type}: {why}", error, path, answered=True)
            self._write_error(path, request_id, error)

    def _too_deep(self, message: str) -> ValidationError:
        issue = Issue(path="", code="too_deep", message=f"Nested deeper than {self._max_depth} levels")
        return ValidationError(message, data=[issue])

    def _track(self, task: asyncio.Task[None], deadline: float | None) -> None:
        """Hold a call that has to wait to its deadline (the method's, else the gate's
        default), as in flight; it removes itself when it ends."""
        gate = self.gate
        if gate is not None and deadline is None:
            deadline = gate.default_deadline
        at = math.inf if deadline is None or deadline == math.inf or gate is None else _monotonic() + deadline
        self._tasks.add(task, at, None)

    def _deliver(self, route: CallRoute, data: bytes | memoryview) -> None:
        """Serve a message (a call nobody answers) in a copy of its method's context: its
        handler's coroutine is the call's task, started at once (see :mod:`grestws.inline`).
        What it raises is reported; if it has to wait, it is tracked as in flight and held
        to its deadline until it ends."""
        spec, fn, direct = route
        try:
            arg = spec.decode_input(data)
        except Exception as exc:  # msgspec's errors, and RecursionError on deep data
            self._invalid_input(spec, None, exc)
            return
        path = spec.path
        context = (self._message_contexts.get(path) or self._message_context(path)).copy()
        try:
            call: Any  # the handler's awaitable, made in the call's context if making it runs code
            if spec.has_input:
                call = fn(arg) if direct else context.run(fn, arg)
            else:
                call = fn() if direct else context.run(fn)
            if type(call) is not _Coroutine:
                call = _awaiting(call)  # an awaitable of another kind, from a plain function
            task = inline.start(self._loop, call, context)
        except Exception as exc:
            self._failed(spec, exc, None)
            return
        if task is not None:
            self._track(task, spec.deadline)
            task.add_done_callback(functools.partial(self._message_ended, spec))

    def _message_ended(self, spec: MethodSpec, task: asyncio.Task[Any]) -> None:
        """A message's handler that had to wait has ended: out of the in-flight set, and
        what it raised (or its deadline passing) reported."""
        self._tasks.pop(task, None)
        late = False
        if self._overdue is not None and task in self._overdue:
            self._overdue.discard(task)
            late = True
        if task.cancelled():
            if late:
                self._report_overdue(spec)
            return  # cancelled at shutdown, or by whoever else cancelled its task
        exc = task.exception()
        if isinstance(exc, Exception):
            self._failed(spec, exc, None)

    def base_context(self) -> contextvars.Context:
        """The connection's context: every incoming call runs in a copy of it, so what is
        set in it (the connection, context keys set by handshake middleware) every call
        sees, and what a call sets no other call sees."""
        if self._context is None:
            self._context = contextvars.copy_context()
            self._context.run(_connection.set, self.connection)
        return self._context

    def _message_context(self, path: str) -> contextvars.Context:
        """The connection's context with ``current_message()`` set to a message to
        ``path``: every message to it runs in a copy. The connection's context is
        settled by then (handshake middleware runs before any call)."""
        context = self.base_context().copy()
        context.run(_message.set, MessageInfo(path))
        self._message_contexts[path] = context
        return context

    async def _serve(self, route: CallRoute, request_id: int | None, data: bytes | memoryview) -> None:
        """Serve one incoming call; the task removes itself from the in-flight set."""
        try:
            spec, fn, _ = route
            if request_id is not None:  # a message's context has its MessageInfo already
                _message.set(MessageInfo(spec.path, request_id))
                if self.draining:
                    self._write_error(spec.path, request_id, UnavailableError("Server is shutting down"))
                    return
            try:
                arg = spec.decode_input(data)
            except Exception as exc:  # msgspec's errors, and RecursionError on deep data
                self._invalid_input(spec, request_id, exc)
                return
            error: ApiError[Any]
            try:
                if self.interceptors:
                    call = Call(spec, "incoming", self.connection, self.identity, arg, request_id)
                    result = await run_intercepted(
                        self.interceptors, call, lambda: fn(arg) if spec.has_input else fn()
                    )
                else:
                    result = await (fn(arg) if spec.has_input else fn())
                if request_id is None:
                    return
                reply = codec.encode_reply(spec.path_bytes, request_id, result, spec.has_result)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                overdue = task is not None and self._overdue is not None and task in self._overdue
                cancelled = self._cancelled is not None and task in self._cancelled
                if task is None or not (overdue or cancelled):
                    raise
                task.uncancel()
                error = (
                    self._report_overdue(spec)
                    if overdue
                    else ServerError("Cancelled: the server is shutting down")
                )
                if request_id is None:
                    return
            except Exception as exc:
                failure = self._failed(spec, exc, request_id)
                if failure is None or request_id is None:
                    return
                error = failure
            else:
                try:
                    if not await self.transport.send(reply, self._max_buffer):
                        self._too_slow()
                except ConnectionClosedError:
                    pass  # the peer is gone: nobody to answer
                return
            self._write_error(spec.path, request_id, error)
        finally:
            if self._tasks:  # none is tracked while every call finishes without waiting
                task = asyncio.current_task()
                if task is not None:
                    self._tasks.pop(task, None)
                    if self._overdue is not None:
                        self._overdue.discard(task)

    def _overrun(self, task: asyncio.Task[None], _: None) -> None:
        """A handler ran past its deadline: cancel it (its call is answered SERVER_ERROR);
        it stays in flight, without a deadline, until it ends."""
        self._tasks.add(task, math.inf, None)
        if not task.done():
            if self._overdue is None:
                self._overdue = set()
            self._overdue.add(task)
            task.cancel()

    def _invalid_input(self, spec: MethodSpec, request_id: int | None, exc: Exception) -> None:
        """Refuse a call whose argument does not decode (``exc`` says why)."""
        invalid = ValidationError("Invalid input", data=codec.validation_issues(exc))
        self._refuse(IncidentKind.INVALID_PAYLOAD, spec.path, request_id, invalid, str(invalid.data))

    def _failed(self, spec: MethodSpec, exc: Exception, request_id: int | None) -> ApiError[Any] | None:
        """A handler raised ``exc``: the error that answers its request (a declared error
        as it is, anything else SERVER_ERROR with a ref, reported), or None for a message
        (reported)."""
        if _is_api_error(exc) and spec.declares(exc):
            if request_id is not None:
                return exc
            self.report(IncidentKind.HANDLER_FAILED, f"{spec.path}: handler raised {exc}", exc)
            return None
        error = self._server_error(spec, exc, "undeclared error" if _is_api_error(exc) else "handler failed")
        return error if request_id is not None else None

    def _report_overdue(self, spec: MethodSpec) -> ServerError:
        error = ServerError("Deadline exceeded")
        self.report(IncidentKind.DEADLINE_EXCEEDED, f"{spec.path}: cancelled at its deadline", error)
        return error

    def _server_error(self, spec: MethodSpec, exc: Exception, what: str) -> ServerError:
        ref = ref_of(exc)
        self.report(
            IncidentKind.HANDLER_FAILED,
            f"{spec.path}: {what} (ref {ref})",
            ServerError(f"{spec.path}: {what}", ref=ref),
            spec.path,
            level=logging.ERROR,
            exc_info=exc,
        )
        return ServerError(ref=ref)

    # -- writing ----------------------------------------------------------------------

    def _over_buffer(self) -> bool:
        """Whether the peer has left more unread than the limit allows; closes it if so."""
        bound = self._max_buffer
        if bound is not None and self.transport.buffered > bound:
            self._too_slow()
            return True
        return False

    def _too_slow(self) -> None:
        """Close a peer that has left more unread than ``max_outgoing_buffer``."""
        self.close_soon(CLOSE_TRY_AGAIN_LATER, "Too slow to read", IncidentKind.SLOW_CONSUMER)

    def _write_now(self, frame: bytes | bytearray) -> None:
        """Write an answer without waiting: nothing of it stays in a task."""
        try:
            if not self.transport.write(frame, self._max_buffer):
                self._too_slow()
        except ConnectionClosedError:
            pass  # the peer is gone: nobody to answer

    def _write_error(self, path: str, request_id: int, error: ApiError[Any]) -> None:
        self._write_now(codec.encode_response(path.encode(), request_id, error_envelope(error)))

    def push(self, frame: bytes | bytearray) -> bool:
        """Write a server push now, unless the peer has more than ``push_buffer`` bytes
        unread: then it is dropped for this peer and counted (and a peer over the
        outgoing limit is closed with 1013). Never waits.

        Returns:
            Whether the frame was written.
        """
        if self.closed or self._dropping:
            return False
        try:
            if self.transport.write(frame, self._push_buffer):
                self._dropped_pushes = 0
                return True
        except ConnectionClosedError:
            return False
        self._drop_push()
        return False

    def _drop_push(self) -> None:
        """Count a push not written to a peer with more than ``push_buffer`` bytes unread;
        close a peer over the outgoing limit or one that missed too many pushes in a row."""
        if self._over_buffer():
            return
        self._dropped_pushes += 1
        self.report(IncidentKind.PUSH_DROPPED, f"dropped a push: over {self._push_buffer} bytes unread")
        cap = self._max_dropped_pushes
        if cap is not None and self._dropped_pushes >= cap:
            reason = f"Missed {cap} pushes in a row"
            self.close_soon(CLOSE_TRY_AGAIN_LATER, reason, IncidentKind.SLOW_CONSUMER)

    def close_soon(self, code: int, reason: str, kind: IncidentKind) -> None:
        """Drop a peer that broke the limits: close with ``code`` and read nothing more
        from it (see :meth:`Transport.drop`); report why, once."""
        if self._dropping or self.closed:
            return
        self._dropping = True
        self.report(kind, f"closing with {code}: {reason}")
        self.transport.drop(code, reason)

    def report(
        self,
        kind: IncidentKind,
        message: str,
        error: GrestwsError | None = None,
        path: str = "",
        *,
        answered: bool = False,
        level: int = logging.WARNING,
        exc_info: BaseException | None = None,
    ) -> None:
        """Count, log (throttled) and hand over an incident of this connection. One the
        peer was told of (``answered``) is logged at INFO unless ``level`` says more."""
        if answered and level == logging.WARNING:
            level = logging.INFO
        self.incidents.report(
            Incident(kind, message, connection=self.connection, path=path, error=error, answered=answered),
            level=level,
            exc_info=exc_info,
        )

    # -- calling ----------------------------------------------------------------------

    async def request(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Any:
        """Send a request and wait for its response.

        Cancel-safe: cancelling the caller forgets the request; a late response is ignored.

        Raises:
            ApiError: the peer answered with an error (the declared class when declared).
            ValidationError: the peer's answer does not fit the method's success type.
            RequestTimeoutError: no answer within ``timeout`` seconds.
            ConnectionLostError: the connection closed after the request was sent.
            ConnectionClosedError: the connection is closed (nothing was sent).
        """
        if self.closed:
            raise ConnectionClosedError(self.close_code, self.close_reason)
        self._last_id += 1
        request_id = self._last_id
        frame = codec.encode_call(spec.prefix, request_id, arg, spec.has_input)
        future: asyncio.Future[bytes | memoryview] = self._loop.create_future()
        self._pending[request_id] = future
        timeouts = None
        if timeout is not None:
            timeouts = self._timeouts
            if timeouts is None:
                timeouts = self._timeouts = Deadlines(self._loop, self._time_out)
            timeouts.add(request_id, _monotonic() + timeout, (spec.path, timeout))
        try:
            if not await self.transport.send(frame, self._max_buffer):
                self._too_slow()
                raise ConnectionClosedError(CLOSE_TRY_AGAIN_LATER, "Too slow to read")
            data = await future
        finally:
            self._pending.pop(request_id, None)
            if timeouts is not None:
                timeouts.pop(request_id, None)
            if not future.done():
                future.cancel()
        # The envelope is one level deeper than the result it carries.
        if spec.deep_result and len(data) > self._max_depth and too_deep(data, self._max_depth + 1):
            raise self._too_deep(f"{spec.path}: the response is nested too deep")
        return read_response(spec, data)

    def _time_out(self, request_id: int, what: tuple[str, float]) -> None:
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_exception(RequestTimeoutError(*what))

    async def notify(self, spec: MethodSpec, arg: Any) -> None:
        """Send a fire-and-forget call; returns once the frame is handed to the transport.

        On a server (a session with a gate) it never waits: see :meth:`push`. On a client
        it waits while the write buffer is full (flow control).

        Raises:
            ConnectionClosedError: the connection is closed.
        """
        if self.closed:
            raise ConnectionClosedError(self.close_code, self.close_reason)
        frame = codec.encode_call(spec.prefix, None, arg, spec.has_input)
        if self.gate is not None:
            self.push(frame)
            return
        await self.transport.send(frame)

    # -- closing ----------------------------------------------------------------------

    def connection_lost(self, code: int | None, reason: str) -> None:
        """Mark the session closed and fail every pending request at once, with
        :class:`~grestws.exceptions.ConnectionLostError` (sent, fate unknown)."""
        if self.closed:
            return
        self.close_code = code
        self.close_reason = reason
        self.closed = True
        if self._timeouts is not None:
            self._timeouts.clear()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionLostError(code, reason))

    @property
    def pending_count(self) -> int:
        """How many outgoing requests wait for their response."""
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """How many incoming calls are being served."""
        return sum(1 for task in self._tasks if not task.done())

    async def wait_pending(self, timeout: float) -> bool:
        """Wait until no outgoing request is pending, at most ``timeout`` s; True if none is."""
        return await _wait_all(lambda: list(self._pending.values()), timeout)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no incoming call is being served, at most ``timeout`` s; True if none is."""
        return await _wait_all(lambda: [task for task in self._tasks if not task.done()], timeout)

    def cancel_tasks(self) -> list[asyncio.Task[None]]:
        """Cancel the incoming calls still being served; a request among them is answered
        SERVER_ERROR "Cancelled: the server is shutting down" (it may have run in part).
        Returns their tasks, which end soon after."""
        tasks = list(self._tasks)
        self._tasks.clear()
        cancelled = self._cancelled
        if cancelled is None:
            cancelled = self._cancelled = set()
        for task in tasks:
            if not task.done():
                cancelled.add(task)
                task.add_done_callback(cancelled.discard)
                task.cancel()
        return tasks


async def _wait_all(current: Callable[[], list[asyncio.Future[Any]]], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while waiting := current():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.wait(waiting, timeout=remaining)
    return True
