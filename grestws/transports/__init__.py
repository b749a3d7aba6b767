"""Transports: what carries a session's frames.

:class:`Transport` is the interface a :class:`~grestws.session.Session` reads and writes
through. Its implementations live beside it: :mod:`grestws.transports.websockets` (the
websockets library, both sides), :mod:`grestws.transports.asgi` (any ASGI server),
:mod:`grestws.transports.picows` (picows, both sides) and
:mod:`grestws.transports.memory` (an in-memory pair for tests). This module imports none
of them; :class:`Inbox` is the part of reading they share.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, NamedTuple, Protocol

__all__ = ("Dialed", "Dialer", "Inbox", "Refusal", "Sink", "Transport", "settled_sends")

logger = logging.getLogger("grestws")

Sink = Callable[[bytes | bytearray], None]
"""Where a transport hands every incoming message: called once per message, in order.
The message is the sink's from then on: the transport neither keeps nor changes it."""


class Inbox:
    """A transport's whole incoming messages on their way to the sink: kept until
    :meth:`deliver_to` sets the sink, then handed over at once, in order. A sink that
    raises is logged, never raised into the transport's own callback.

    Attributes:
        sink: The sink, None until set (a transport's hot path may call it directly).
    """

    __slots__ = ("_early", "sink")

    def __init__(self) -> None:
        self.sink: Sink | None = None
        self._early: list[bytes | bytearray] = []

    def hand(self, data: bytes | bytearray) -> None:
        """Hand one whole message to the sink, or keep it until there is one."""
        sink = self.sink
        if sink is None:
            self._early.append(data)
            return
        try:
            sink(data)
        except Exception:  # a sink must not break the transport's callback
            logger.exception("failed to handle a message")

    def deliver_to(self, sink: Sink) -> None:
        """Hand every message to ``sink`` from now on, the ones kept so far first."""
        early, self._early = self._early, []
        self.sink = sink
        for data in early:
            sink(data)


_Settled = tuple[asyncio.Future[bool], asyncio.Future[bool]]
_settled: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Settled] = weakref.WeakKeyDictionary()


def settled_sends(loop: asyncio.AbstractEventLoop) -> _Settled:
    """Two done futures of ``loop``, their results False and True: what a transport's
    ``send`` returns when it has written the frame (or refused it) and need not wait, so
    that awaiting it makes no coroutine and never suspends. Shared by every transport on
    ``loop`` (being done, neither can be cancelled or set again)."""
    sends = _settled.get(loop)
    if sends is None:
        refused, written = loop.create_future(), loop.create_future()
        refused.set_result(False)
        written.set_result(True)
        sends = _settled[loop] = (refused, written)
    return sends


class Transport(Protocol):
    """One open message channel. Every frame is one text message of UTF-8 bytes.

    Incoming messages are pushed: after ``deliver_to(sink)`` the transport calls
    ``sink(frame)`` for every message, in order, from its own callbacks (messages that came
    before are kept and handed over first); the sink never blocks. ``write`` hands a frame
    to the network without waiting; ``send`` also waits while the write buffer is full
    (flow control), and may write when called and return what to await (an already done
    future when there is nothing to wait for, see :func:`settled_sends`). Given a
    ``limit``, either writes nothing and returns False when more than ``limit`` bytes wait
    in the write buffer already. Both raise :class:`~grestws.exceptions.ConnectionClosedError`
    once the channel is closed, whatever the OS said (``send`` when called or when
    awaited). ``buffered`` is how many bytes were written and not yet taken by the
    network. ``close`` is idempotent and bounded in time; ``wait_closed`` returns the close
    code and reason. ``drop`` ends a peer that broke the rules: a close frame if it can go
    out, nothing more read, the connection gone within the close timeout whether or not
    the peer answers. A frame handed to ``write`` or ``send`` is the transport's: the
    caller does not change it afterwards.
    """

    def deliver_to(self, sink: Sink) -> None: ...
    def write(self, frame: bytes | bytearray, limit: int | None = None) -> bool: ...
    @property
    def buffered(self) -> int: ...
    def send(self, frame: bytes | bytearray, limit: int | None = None) -> Awaitable[bool]: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...
    def drop(self, code: int, reason: str) -> None: ...
    async def wait_closed(self) -> tuple[int | None, str]: ...


class Refusal(NamedTuple):
    """Why an upgrade is refused: the HTTP status to answer it with, or the close code
    where the transport can no longer answer HTTP, and a reason."""

    status: HTTPStatus
    close_code: int
    reason: str


class Dialed(NamedTuple):
    """What a :class:`Dialer` opened: the transport, and the peer's address if it has one."""

    transport: Transport
    remote_address: Any = None


class Dialer(Protocol):
    """How a client opens its transport: ``await dialer(url, upgrade_headers)``.

    The default, :class:`~grestws.transports.websockets.WebsocketsDialer`, opens a socket;
    the testkit's connects to an App in the same process. The client bounds the call with
    its handshake timeout and cancels it when it runs out, so a dialer must close what it
    opened when cancelled.

    Raises:
        ConnectError: the transport could not be opened (refused, HTTP 404, ...).
    """

    def __call__(self, url: str, headers: Mapping[str, str], /) -> Awaitable[Dialed]: ...
