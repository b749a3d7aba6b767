"""The conversation on one open connection, whatever carries it.

:class:`Session` numbers and matches requests, dispatches incoming calls concurrently,
applies timeouts, answers pings and fails everything pending when the connection goes. It
reads and writes through a :class:`Transport`, so the same code runs over websockets, over
an ASGI server or over an in-memory pipe. Both sides use it: the server's session serves
``client_to_server`` and calls ``server_to_client``; the client's does the opposite.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

import msgspec

from grestws.context import Connection, MessageInfo, _connection, _message
from grestws.contract.contract import ContractHalf, Entry
from grestws.contract.methods import MethodSpec
from grestws.exceptions import (
    STANDARD_ERRORS,
    ApiError,
    ConnectionClosedError,
    ForbiddenError,
    FrameError,
    GrestwsError,
    NotAuthorizedError,
    RequestTimeoutError,
    RouteNotFoundError,
    ServerError,
    ValidationError,
)
from grestws.permissions import Identity
from grestws.protocol import codec
from grestws.protocol.frames import PONG, Frame, FrameType, ResultEnvelope

__all__ = ("Session", "Transport")

logger = logging.getLogger("grestws")

Handler = Callable[..., Awaitable[Any]]
ErrorCallback = Callable[[GrestwsError], object]

_encoder = msgspec.json.Encoder()
_REQ = FrameType.REQ
_MSG = FrameType.MSG
_RES = FrameType.RES
_PING = FrameType.PING
_MAX_UNKNOWN_TYPES = 256


class Transport(Protocol):
    """One open message channel. Every frame is one text message of UTF-8 bytes.

    Incoming messages are pushed: after ``deliver_to(sink)`` the transport calls
    ``sink(frame)`` for every message, in order, from its own callbacks (messages that came
    before are kept and handed over first); the sink never blocks. ``send`` raises
    :class:`~grestws.exceptions.ConnectionClosedError` once the channel is closed;
    ``close`` is idempotent; ``wait_closed`` returns the close code and reason.
    """

    def deliver_to(self, sink: Callable[[bytes], None]) -> None: ...
    async def send(self, frame: bytes) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...
    async def wait_closed(self) -> tuple[int | None, str]: ...


def new_ref() -> str:
    """An opaque id that ties an error on the wire to its log entry."""
    return uuid.uuid4().hex[:16]


class FirstFrame:
    """A transport's sink during a handshake: waits for the first frame of the given kinds,
    drops the frames before it, and keeps the ones after it for the session."""

    __slots__ = ("_first", "_kinds", "after")

    def __init__(self, *kinds: FrameType) -> None:
        self._kinds = kinds
        self._first: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.after: list[bytes] = []

    def receive(self, raw: bytes) -> None:
        """The sink: called by the transport for every frame until the session takes over."""
        if self._first.done():
            self.after.append(raw)
            return
        try:
            frame = codec.decode_frame(raw)
        except FrameError:
            return
        if frame.type in self._kinds:
            self._first.set_result(frame)

    async def wait(self, transport: Transport, timeout: float) -> Frame:
        """The frame, unless the transport closes or ``timeout`` seconds pass first.

        Raises:
            ConnectionClosedError: the transport closed first.
            TimeoutError: the time ran out first.
        """
        closed = asyncio.ensure_future(transport.wait_closed())
        try:
            await asyncio.wait((self._first, closed), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if self._first.done():
            return self._first.result()
        if closed.done() and not closed.cancelled():
            code, reason = closed.result()
            raise ConnectionClosedError(code, reason)
        raise TimeoutError


def error_envelope(error: ApiError[Any]) -> bytes:
    """The error envelope that sends ``error``, stamped with the current time.

    Data that cannot be encoded turns the error into SERVER_ERROR (logged with its ref).
    """
    try:
        data = None if error.data is None else _encoder.encode(error.data)
    except (TypeError, msgspec.EncodeError) as exc:
        ref = new_ref()
        logger.error("cannot encode the data of %s (ref %s)", error.type, ref, exc_info=exc)
        return error_envelope(ServerError(ref=ref))
    return codec.encode_error(
        error.type,
        error.status_code,
        data=data,
        message=error.message,
        timestamp=time.time_ns() // 1_000_000,
        ref=error.ref,
    )


class Session:
    """Requests, dispatch and timeouts on one connection.

    Args:
        transport: Where frames come from and go to.
        connection: What handlers see as :func:`~grestws.current_connection`.
        incoming: The contract half this side serves.
        outgoing: The contract half this side calls.
        on_error: Told of problems no caller can be told of (a malformed frame, a bad
            fire-and-forget payload, a failed fire-and-forget handler).

    Concurrency: every incoming call runs in a task of its own; outgoing calls may be made
    from any number of tasks at once. Responses are matched by id, in any order.
    """

    __slots__ = (
        "_context",
        "_deadlines",
        "_handlers",
        "_last_id",
        "_loop",
        "_pending",
        "_target",
        "_tasks",
        "_timer",
        "_timer_at",
        "close_code",
        "close_reason",
        "closed",
        "connection",
        "draining",
        "identity",
        "incoming",
        "on_error",
        "outgoing",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        connection: Connection,
        *,
        incoming: ContractHalf,
        outgoing: ContractHalf,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.transport = transport
        self.connection = connection
        self.incoming = incoming
        self.outgoing = outgoing
        self.on_error = on_error
        self.draining = False
        self.identity: Identity | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = False
        self._handlers: Mapping[str, Entry] = {}
        self._target: object = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._deadlines: dict[int, tuple[float, str, float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_id = 0
        self._loop = asyncio.get_running_loop()
        self._context: contextvars.Context | None = None

    # -- handlers ---------------------------------------------------------------------

    def bind(self, handler: object) -> None:
        """Serve the incoming methods that ``handler`` implements (one handler a session)."""
        self._target = handler
        table = self.incoming.bind(handler)
        self._handlers = {**self._handlers, **table} if self._handlers else table

    def bind_one(self, spec: MethodSpec, fn: Handler) -> None:
        """Serve one incoming method with the function ``fn``."""
        self._handlers = {**self._handlers, spec.path: (spec, fn, False)}

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

    def receive(self, raw: bytes) -> None:
        """Handle one incoming frame; never raises for anything the peer sent."""
        try:
            frame = codec.decode_frame(raw)
        except FrameError as exc:
            self.report(exc, f"dropped a malformed frame ({exc}): {raw[:64]!r}")
            return
        kind = frame.type
        if kind is _RES:
            future = self._pending.pop(frame.id or 0, None)
            if future is not None and not future.done():
                future.set_result(frame.data)
        elif kind is _REQ or kind is _MSG:
            entry = self._handlers.get(frame.path)
            spec = entry[0] if entry is not None else self.incoming.by_path.get(frame.path)
            if spec is not None and spec.gated and not spec.permission.allows(self.identity):
                self._refuse_call(spec, frame.id)  # before ROUTE_NOT_FOUND: gated routes stay hidden
                return
            if entry is None:
                error = RouteNotFoundError(f"Route not found: {frame.path}")
                if kind is _REQ:
                    self._spawn(self._send_error(frame.path, frame.id or 0, error))
                else:
                    self.report(error, f"dropped a message to {frame.path}: no such route")
                return
            self._spawn(self._serve(entry, frame.id, frame.data), leaves_itself=True)
        elif kind is _PING:
            self._spawn(self._send_quietly(PONG))
        # o frames only prove liveness; h k x after the handshake mean nothing.

    def _refuse_call(self, spec: MethodSpec, request_id: int | None) -> None:
        """Answer a call its caller may not make: NOT_AUTHORIZED without an identity,
        FORBIDDEN with one that lacks the scope. A message is dropped and reported."""
        error: ApiError[Any]
        if self.identity is None:
            error = NotAuthorizedError(f"{spec.path} needs an identity")
        else:
            error = ForbiddenError(f"{spec.path} needs {spec.permission!r}")
        if request_id is None:
            self.report(error, f"dropped {spec.path}: {error.message}")
        else:
            self._spawn(self._send_error(spec.path, request_id, error))

    def _spawn(self, coro: Coroutine[Any, Any, None], *, leaves_itself: bool = False) -> None:
        """Run ``coro`` in a task of its own, in the connection's context, tracked as in
        flight; ``leaves_itself`` says the coroutine removes its task from the set when it
        ends, which spares a done callback on the hot path."""
        context = self._context or self.base_context()
        if sys.version_info >= (3, 12):
            # Runs the call at once, up to its first suspension: a handler that answers
            # without waiting costs no event-loop iteration.
            task = asyncio.Task(coro, loop=self._loop, context=context.copy(), eager_start=True)
            if task.done():
                return
        else:
            task = self._loop.create_task(coro, context=context.copy())
        self._tasks.add(task)
        if not leaves_itself:
            task.add_done_callback(self._tasks.discard)

    def base_context(self) -> contextvars.Context:
        """The connection's context: every incoming call runs in a copy of it, so what is
        set in it (the connection, context keys set by handshake middleware) every call
        sees, and what a call sets no other call sees."""
        if self._context is None:
            self._context = contextvars.copy_context()
            self._context.run(_connection.set, self.connection)
        return self._context

    async def _serve(self, entry: Entry, request_id: int | None, data: bytes) -> None:
        """Serve one incoming call; the task removes itself from the in-flight set."""
        try:
            spec, fn, takes_self = entry
            _message.set(MessageInfo(spec.path, request_id))
            if request_id is not None and self.draining:
                await self._send_error(spec.path, request_id, ServerError("Server is shutting down"))
                return
            try:
                arg = spec.decode_input(data)
            except msgspec.MsgspecError as exc:
                invalid = ValidationError("Invalid input", data=codec.validation_issues(exc))
                if request_id is None:
                    self.report(invalid, f"dropped {spec.path}: {invalid.data}")
                else:
                    await self._send_error(spec.path, request_id, invalid)
                return
            try:
                if takes_self:
                    result = await (fn(self._target, arg) if spec.has_input else fn(self._target))
                else:
                    result = await (fn(arg) if spec.has_input else fn())
                if request_id is None:
                    return
                payload = codec.encode_ok(_encoder.encode(result) if spec.has_result else None)
            except ApiError as exc:
                if not spec.declares(exc):
                    error: ApiError[Any] = self._server_error(spec, exc, "undeclared error")
                elif request_id is None:
                    self.report(exc, f"{spec.path}: handler raised {exc}")
                    return
                else:
                    error = exc
                if request_id is None:
                    return
            except Exception as exc:
                error = self._server_error(spec, exc, "handler failed")
                if request_id is None:
                    return
            else:
                with contextlib.suppress(ConnectionClosedError):  # the peer is gone: nobody to answer
                    await self.transport.send(b"s:%b:%d:%b" % (spec.path_bytes, request_id, payload))
                return
            await self._send_error(spec.path, request_id, error)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    def _server_error(self, spec: MethodSpec, exc: Exception, what: str) -> ServerError:
        ref = new_ref()
        logger.error("%s: %s (ref %s)", spec.path, what, ref, exc_info=exc)
        if self.on_error is not None:
            self._call_on_error(ServerError(f"{spec.path}: {what}", ref=ref))
        return ServerError(ref=ref)

    async def _send_error(self, path: str, request_id: int, error: ApiError[Any]) -> None:
        await self._send_quietly(b"s:%b:%d:%b" % (path.encode(), request_id, error_envelope(error)))

    async def _send_quietly(self, frame: bytes) -> None:
        with contextlib.suppress(ConnectionClosedError):  # the peer is gone: nobody to answer
            await self.transport.send(frame)

    def report(self, error: GrestwsError, message: str) -> None:
        """Log a problem of the connection and hand it to ``on_error``."""
        logger.warning("%s: %s", self.connection.id, message)
        if self.on_error is not None:
            self._call_on_error(error)

    def _call_on_error(self, error: GrestwsError) -> None:
        try:
            self.on_error(error)  # type: ignore[misc]
        except Exception:
            logger.exception("on_error callback failed")

    # -- calling ----------------------------------------------------------------------

    async def request(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Any:
        """Send a request and wait for its response.

        Cancel-safe: cancelling the caller forgets the request; a late response is ignored.

        Raises:
            ApiError: the peer answered with an error (the declared class when declared).
            ValidationError: the peer's answer does not fit the method's success type.
            RequestTimeoutError: no answer within ``timeout`` seconds.
            ConnectionClosedError: the connection is closed or closed while waiting.
        """
        if self.closed:
            raise ConnectionClosedError(self.close_code, self.close_reason)
        self._last_id += 1
        request_id = self._last_id
        frame = b"%b%d:%b" % (spec.prefix, request_id, _encoder.encode(arg) if spec.has_input else b"")
        future: asyncio.Future[bytes] = self._loop.create_future()
        self._pending[request_id] = future
        if timeout is not None:
            deadline = self._loop.time() + timeout
            self._deadlines[request_id] = (deadline, spec.path, timeout)
            if deadline < self._timer_at:
                self._arm(deadline)
        try:
            await self.transport.send(frame)
            data = await future
        finally:
            self._pending.pop(request_id, None)
            self._deadlines.pop(request_id, None)
            if not future.done():
                future.cancel()
        return _read_response(spec, data)

    def _arm(self, when: float) -> None:
        """Make the session's one timeout timer fire at ``when``."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._expire)
        self._timer_at = when

    def _expire(self) -> None:
        """Fail the requests whose time is up; wait for the next deadline.

        One timer serves every request of the session: it is re-armed only when a request
        has an earlier deadline than the one it waits for, or when it fires.
        """
        self._timer = None
        self._timer_at = math.inf
        now = self._loop.time()
        earliest = math.inf
        for request_id, (deadline, path, timeout) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[request_id]
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_exception(RequestTimeoutError(path, timeout))
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._arm(earliest)

    async def notify(self, spec: MethodSpec, arg: Any) -> None:
        """Send a fire-and-forget call; returns once the frame is handed to the transport.

        Raises:
            ConnectionClosedError: the connection is closed.
        """
        if self.closed:
            raise ConnectionClosedError(self.close_code, self.close_reason)
        await self.transport.send(spec.prefix + b":" + (_encoder.encode(arg) if spec.has_input else b""))

    # -- closing ----------------------------------------------------------------------

    def connection_lost(self, code: int | None, reason: str) -> None:
        """Mark the session closed and fail every pending request at once."""
        if self.closed:
            return
        self.close_code = code
        self.close_reason = reason
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadlines.clear()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionClosedError(code, reason))

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

    def cancel_tasks(self) -> None:
        """Cancel the incoming calls still being served."""
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()


async def _wait_all(current: Callable[[], list[asyncio.Future[Any]]], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while waiting := current():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.wait(waiting, timeout=remaining)
    return True


_unknown_errors: dict[str, type[ApiError[Any]]] = {}


def _read_response(spec: MethodSpec, data: bytes) -> Any:
    try:
        envelope = codec.decode_result(data)
    except msgspec.MsgspecError as exc:
        raise ValidationError(
            f"{spec.path}: the response is not a result envelope", data=codec.validation_issues(exc)
        ) from exc
    if envelope.success:
        try:
            return spec.decode_result(envelope.data or b"null")
        except msgspec.MsgspecError as exc:
            raise ValidationError(
                f"{spec.path}: the response does not fit the method's success type",
                data=codec.validation_issues(exc),
            ) from exc
    raise error_from_envelope(envelope, spec)


def error_from_envelope(
    envelope: ResultEnvelope,
    spec: MethodSpec | None = None,
    *,
    errors: Mapping[str, type[ApiError[Any]]] | None = None,
) -> ApiError[Any]:
    """The exception an error envelope stands for: the class that ``spec`` (or else the
    ``errors`` mapping, or the standard errors) gives its type, with its typed data, or a
    class made for a type the contract does not know."""
    type_name = envelope.type
    if spec is not None:
        error_cls = spec.error_class(type_name)
    else:
        error_cls = (errors or {}).get(type_name) or STANDARD_ERRORS.get(type_name)
    data: Any = None
    if envelope.data:
        try:
            if error_cls is None:
                data = msgspec.json.decode(envelope.data)
            else:
                data = error_cls.data_decoder().decode(envelope.data)
        except msgspec.MsgspecError:
            data = None
    if error_cls is None:
        error_cls = _unknown_error_class(type_name, envelope.status_code or 500)
    context = envelope.context
    if context is None:
        error = error_cls(data=data)
    else:
        error = error_cls(context.display_message, data=data, ref=context.ref, timestamp=context.timestamp)
    error.remote = True
    return error


def _unknown_error_class(type_name: str, status_code: int) -> type[ApiError[Any]]:
    error_cls = _unknown_errors.get(type_name)
    if error_cls is None:
        try:
            error_cls = ApiError.define(
                type_name, status_code, doc=f"{type_name}, not declared by the contract"
            )
        except GrestwsError:
            return ServerError
        if len(_unknown_errors) < _MAX_UNKNOWN_TYPES:
            _unknown_errors[type_name] = error_cls
    return error_cls
