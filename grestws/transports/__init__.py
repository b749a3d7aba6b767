"""Transports: what carries a session's frames.

:class:`Transport` is the interface a :class:`~grestws.session.Session` reads and writes
through. Its implementations live beside it: :mod:`grestws.transports.websockets` (the
websockets library, both sides), :mod:`grestws.transports.asgi` (any ASGI server) and
:mod:`grestws.transports.memory` (an in-memory pair for tests). This module imports none
of them.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import NamedTuple, Protocol

__all__ = ("Refusal", "Sink", "Transport")

Sink = Callable[[bytes], None]
"""Where a transport hands every incoming message: called once per message, in order."""


class Transport(Protocol):
    """One open message channel. Every frame is one text message of UTF-8 bytes.

    Incoming messages are pushed: after ``deliver_to(sink)`` the transport calls
    ``sink(frame)`` for every message, in order, from its own callbacks (messages that came
    before are kept and handed over first); the sink never blocks. ``write`` hands a frame
    to the network without waiting, ``send`` also waits while the write buffer is full
    (flow control); both raise :class:`~grestws.exceptions.ConnectionClosedError` once the
    channel is closed, whatever the OS said. ``buffered`` is how many bytes were written
    and not yet taken by the network. ``close`` is idempotent and bounded in time;
    ``wait_closed`` returns the close code and reason. ``drop`` ends a peer that broke the
    rules: a close frame if it can go out, nothing more read, the connection gone within
    the close timeout whether or not the peer answers.
    """

    def deliver_to(self, sink: Sink) -> None: ...
    def write(self, frame: bytes) -> None: ...
    @property
    def buffered(self) -> int: ...
    async def send(self, frame: bytes) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...
    def drop(self, code: int, reason: str) -> None: ...
    async def wait_closed(self) -> tuple[int | None, str]: ...


class Refusal(NamedTuple):
    """Why an upgrade is refused: the HTTP status to answer it with, or the close code
    where the transport can no longer answer HTTP, and a reason."""

    status: HTTPStatus
    close_code: int
    reason: str
