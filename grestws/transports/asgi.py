"""ASGI: an App served by uvicorn, hypercorn or any ASGI server, alone or mounted in
Starlette, FastAPI or Litestar beside HTTP routes.

:class:`AsgiEntry` is the ASGI application behind ``App.__call__``: it routes websocket
scopes to the schemas' paths (relative to a mount's ``root_path``), refuses upgrades with
an HTTP status where the server supports the websocket denial-response extension, answers
plain HTTP requests, and runs the lifespan (the App's checks on startup, a graceful
shutdown). :class:`AsgiTransport` carries one connection's frames over ASGI's ``receive``
and ``send``.

What only the ASGI server can do stays with it: protocol pings (uvicorn's
``--ws-ping-interval``), compression, the listening socket, and its own message size cap
(grestws applies ``Limits.max_message_size`` as well).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl

from grestws.context import ConnectRequest, Headers
from grestws.exceptions import ConnectionClosedError, ContractError
from grestws.inline import start
from grestws.limits import Limits
from grestws.transports import Inbox, Refusal, Sink, Transport

__all__ = (
    "AsgiEntry",
    "AsgiHost",
    "AsgiTransport",
    "Receive",
    "Scope",
    "Send",
    "connect_request",
    "route_path",
)

logger = logging.getLogger("grestws")

# As broad as every ASGI server's own types (uvicorn's, hypercorn's TypedDicts, Starlette's
# mappings), so that each of them accepts an App as its application.
Scope = Mapping[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
_HIGH_WATER = 64 * 1024
"""Bytes queued for the ASGI server past which ``send`` waits (flow control)."""


class AsgiHost(Protocol):
    """What :class:`AsgiEntry` needs of the App it serves."""

    @property
    def limits(self) -> Limits: ...
    def check(self) -> None: ...
    def refusal(self, path: str, headers: Mapping[str, str]) -> Refusal | None: ...
    async def handle(self, transport: Transport, request: ConnectRequest, owner: object = None) -> None: ...
    async def shutdown(self, timeout: float | None = None, owner: object = None) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class AsgiEntry:
    """The ASGI application of one App.

    Args:
        host: The App.

    Concurrency: the ASGI server calls it once per connection, concurrently.
    """

    __slots__ = ("_checked", "_host")

    def __init__(self, host: AsgiHost) -> None:
        self._host = host
        self._checked = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await _http(scope, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Check the App and start its broker on startup (it fails to start when it
        cannot be served); on shutdown, drain every connection gracefully and stop the
        broker."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._check()
                except ContractError as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await self._host.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._host.shutdown(owner=self)  # this server's connections, not the App's others
                await self._host.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _check(self) -> None:
        if not self._checked:
            self._host.check()
            self._checked = True

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = connect_request(scope)
        message = await receive()
        if message["type"] != "websocket.connect":  # the client left before the upgrade
            return
        try:
            self._check()
        except ContractError:
            logger.exception("%s: this App cannot be served", request.path)
            await _deny(scope, send, Refusal(HTTPStatus.INTERNAL_SERVER_ERROR, CLOSE_INTERNAL_ERROR, ""))
            return
        refusal = self._host.refusal(request.path, request.headers)
        if refusal is not None:
            await _deny(scope, send, refusal)
            return
        await send({"type": "websocket.accept"})
        transport = AsgiTransport(receive, send, self._host.limits)
        try:
            await self._host.handle(transport, request, self)
        finally:
            await transport.close()


def route_path(scope: Scope) -> str:
    """The path of a scope relative to its ``root_path`` (where a framework mounted the
    app), which prefixes it whole segments at a time (``/api`` is no prefix of
    ``/apiary``); a trailing ``/`` is dropped, as some frameworks add one to a mount."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "").rstrip("/")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        path = path[len(root) :] or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def connect_request(scope: Scope) -> ConnectRequest:
    """The transport-neutral view of an ASGI websocket scope (its path: :func:`route_path`)."""
    path = route_path(scope)
    query = scope.get("query_string", b"").decode("latin-1")
    return ConnectRequest(
        path=path,
        query=dict(parse_qsl(query, keep_blank_values=True)),
        headers=Headers(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
        ),
        remote_address=tuple(client) if (client := scope.get("client")) else None,
    )


async def _deny(scope: Scope, send: Send, refusal: Refusal) -> None:
    """Refuse an upgrade: with its HTTP status where the server supports the denial
    response extension, else with a close before accepting (most servers answer 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = (refusal.reason or refusal.status.phrase).encode()
        await _respond(send, "websocket.http.response", refusal.status, body)
    else:
        await send({"type": "websocket.close", "code": refusal.close_code, "reason": refusal.reason})


async def _http(scope: Scope, send: Send) -> None:
    """A plain HTTP request: the App serves sockets only."""
    await _respond(send, "http.response", HTTPStatus.NOT_FOUND, b"Not Found")


async def _respond(send: Send, kind: str, status: HTTPStatus, text: bytes) -> None:
    """A plain-text HTTP response, as ``kind`` (``http.response`` or the websocket denial
    ``websocket.http.response``) events."""
    body = text + b"\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
    await send({"type": f"{kind}.start", "status": int(status), "headers": headers})
    await send({"type": f"{kind}.body", "body": body})


class AsgiTransport:
    """One accepted ASGI websocket connection as a grestws transport.

    A reader task takes ``websocket.receive`` events and hands their data to the sink;
    frames are sent as text. ``write`` queues a frame and starts the writer at once (see
    :mod:`grestws.inline`): an ASGI server whose ``send`` does not wait (uvicorn's, while
    the peer reads) takes the frame before ``write`` returns, with no task; one that
    holds back because the peer does not read leaves the writer a task and the frames
    queued, and ``buffered`` is what waits in that queue. ``send`` writes directly when
    nothing is queued, and waits while more than 64 KiB is queued.

    Args:
        receive: The connection's ASGI ``receive``.
        send: Its ASGI ``send``.
        limits: ``max_message_size`` (a larger message closes with 1009) and
            ``close_timeout``.
    """

    __slots__ = (
        "_asgi_send",
        "_buffered",
        "_close_sent",
        "_closed",
        "_context",
        "_drained",
        "_inbox",
        "_interrupted",
        "_max_size",
        "_queue",
        "_reader",
        "_reading",
        "_sender",
        "_writer",
        "_writing",
        "close_timeout",
    )

    def __init__(self, receive: Receive, send: Send, limits: Limits) -> None:
        loop = asyncio.get_running_loop()
        self._asgi_send = send
        self._max_size = limits.max_message_size
        self.close_timeout = limits.close_timeout
        self._inbox = Inbox()
        self._queue: collections.deque[bytes | bytearray | tuple[int, str]] = collections.deque()
        self._buffered = 0
        self._writing = False
        self._writer: asyncio.Task[None] | None = None
        self._context = contextvars.copy_context()  # the writer's
        self._sender: asyncio.Task[Any] | None = None  # the task in a direct send
        self._interrupted: asyncio.Task[Any] | None = None  # the one _stop woke up
        self._drained: asyncio.Future[None] | None = None
        self._close_sent: tuple[int, str] | None = None
        self._closed: asyncio.Future[tuple[int | None, str]] = loop.create_future()
        self._reading = True
        self._reader = loop.create_task(self._read(receive))

    # -- reading ----------------------------------------------------------------------

    async def _read(self, receive: Receive) -> None:
        code: int | None = 1006
        reason = "connection lost"
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self._reading:
                        self._take(message)
                elif kind == "websocket.disconnect":
                    code = message.get("code", 1005)
                    reason = message.get("reason") or ""
                    break
        except Exception as exc:  # the server failed the connection (OSError, its own)
            reason = f"connection lost ({type(exc).__name__})"
        finally:
            self._lost(code, reason)

    def _take(self, message: Message) -> None:
        data = message.get("bytes")
        if data is None:
            text = message.get("text")
            if text is None:
                return
            data = text.encode()
        if self._max_size is not None and len(data) > self._max_size:
            self.drop(CLOSE_TOO_BIG, "Message too big")
            return
        self._inbox.hand(data)

    def _lost(self, code: int | None, reason: str) -> None:
        """The connection is gone: settle wait_closed and wake whoever waits to write."""
        self._reading = False
        if not self._closed.done():
            if self._close_sent is not None and code in (1005, 1006):
                code, reason = self._close_sent  # we closed and the peer never answered
            self._closed.set_result((code, reason))
        self._queue.clear()
        self._buffered = 0
        self._wake()

    def deliver_to(self, sink: Sink) -> None:
        self._inbox.deliver_to(sink)

    # -- writing ----------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes queued for the ASGI server but not yet taken by it."""
        return self._buffered

    def _check_open(self) -> None:
        if self._closed.done():
            code, reason = self._closed.result()
            raise ConnectionClosedError(code, reason)
        if self._close_sent is not None:
            raise ConnectionClosedError(*self._close_sent)

    def write(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        """Queue ``frame`` for sending, never waiting: whatever is queued already, or only
        if no more than ``limit`` bytes are.

        Returns:
            Whether ``frame`` was queued (False: over ``limit``).

        Raises:
            ConnectionClosedError: the connection is closing or closed.
        """
        self._check_open()
        if limit is not None and self._buffered > limit:
            return False
        self._queue.append(frame)
        self._buffered += len(frame)
        self._start_writer()
        return True

    async def send(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        """Send ``frame`` (unless more than ``limit`` bytes are queued); wait while more
        than 64 KiB is queued before it, or while the ASGI server holds it back. A
        connection given up on (see :meth:`drop`) ends the wait at once.

        Cancelling it leaves the connection usable: a frame queued behind others is sent
        anyway; one being handed to the ASGI server is sent or not, as that server's
        ``send`` does when cancelled.

        Returns:
            Whether ``frame`` was sent or queued.

        Raises:
            ConnectionClosedError: the connection is closed, or closed while waiting.
        """
        self._check_open()
        if limit is not None and self._buffered > limit:
            return False
        if self._writing:
            self.write(frame)
            if self._buffered > _HIGH_WATER:
                await self._wait_drained()
            return True
        self._writing = True
        task = self._sender = asyncio.current_task()
        try:
            await self._send_text(frame)
        except asyncio.CancelledError:
            if task is not None and self._interrupted is task:
                self._interrupted = None
                if task.uncancel() == 0:  # _stop cancelled the send, not the caller
                    raise self._closed_error() from None
            raise
        finally:
            self._sender = None
            self._writing = False
            if self._queue:
                self._start_writer()
        return True

    async def _send_text(self, frame: bytes | bytearray) -> None:
        try:
            await self._asgi_send({"type": "websocket.send", "text": frame.decode()})
        except Exception as exc:  # OSError, or the server's own "disconnected" error
            self._lost(1006, "connection lost")
            raise self._closed_error() from exc

    def _closed_error(self) -> ConnectionClosedError:
        code, reason = self._closed.result() if self._closed.done() else (1006, "connection lost")
        return ConnectionClosedError(code, reason)

    def _start_writer(self) -> None:
        """Send what is queued now, up to the first ``send`` that has to wait; a task
        sends the rest."""
        if not self._writing:
            self._writing = True
            self._writer = start(asyncio.get_running_loop(), self._flush(), self._context)

    async def _flush(self) -> None:
        """Send what is queued, in order; a queued close goes last."""
        try:
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, tuple):
                    await self._send_close(*item)
                    continue
                try:
                    await self._send_text(item)
                except ConnectionClosedError:
                    return
                finally:
                    self._buffered = max(0, self._buffered - len(item))
                    if self._buffered <= _HIGH_WATER // 4:
                        self._wake()
        finally:
            self._writing = False
            self._wake()

    async def _wait_drained(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drained)
        self._check_open()

    def _wake(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # -- closing ----------------------------------------------------------------------

    async def _send_close(self, code: int, reason: str) -> None:
        if self._closed.done():
            return
        try:
            await self._asgi_send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception:  # the connection went first
            self._lost(1006, "connection lost")

    def _queue_close(self, code: int, reason: str) -> bool:
        """Queue a close frame behind what is queued; False if one was queued before."""
        if self._close_sent is not None or self._closed.done():
            return False
        self._close_sent = (code, reason)
        self._queue.append((code, reason))
        self._start_writer()
        return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` once what is queued is sent; wait for the
        peer's answer at most ``close_timeout`` seconds.

        Idempotent and cancel-safe.
        """
        self._queue_close(code, reason)
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), self.close_timeout)
        except TimeoutError:
            self._stop(code, reason)

    def drop(self, code: int, reason: str) -> None:
        """Stop reading, queue a close frame, and end the connection ``close_timeout``
        later at the latest, whether or not the peer ever reads it."""
        self._reading = False
        if self._queue_close(code, reason):
            asyncio.get_running_loop().call_later(self.close_timeout, self._stop, code, reason)

    def _stop(self, code: int, reason: str) -> None:
        """Give up on the peer: the connection counts as closed with our code, what is
        queued is dropped and every send waiting to write fails; the ASGI server ends the
        socket once the application returns."""
        if not self._closed.done():
            self._closed.set_result((code, reason))
        self._reading = False
        self._reader.cancel()
        if self._writer is not None:
            self._writer.cancel()
        if self._sender is not None and self._interrupted is None:
            # A direct send waits in the ASGI server's send until the peer reads: wake it.
            self._interrupted = self._sender
            self._sender.cancel()
        self._queue.clear()
        self._buffered = 0
        self._wake()

    async def wait_closed(self) -> tuple[int | None, str]:
        """The close code and reason: the peer's; ours when we closed and the peer never
        answered; 1006 when the connection was lost. Cancel-safe."""
        return await asyncio.shield(self._closed)
