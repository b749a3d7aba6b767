"""Closing the socket of a dropped connection: a lingering close.

A connection dropped for breaking a limit has its close frame written, and nothing it
sends is served any more. Closing its socket at once, with the peer's unread frames in
it, would reset the connection, the close frame with it; keeping the socket open
unread until the close timeout holds a file descriptor and the connection's memory
that long for a peer long gone. :func:`linger` does what web servers do for a
misbehaving HTTP client: half-close the socket behind the close frame, read and discard
what the peer still sends, and close as soon as the peer ends its side (or at the close
timeout, whichever comes first).
"""

from __future__ import annotations

import asyncio

__all__ = ("linger",)


class _Lingering(asyncio.Protocol):
    """Reads a dropped connection's socket in place of its protocol: discards every byte,
    closes the socket at the peer's end of stream, and hands the protocol the end of the
    connection and the write buffer's pauses, so that its close frame still drains and its
    waiters still learn that it closed."""

    __slots__ = ("_protocol", "_timer")

    def __init__(self, protocol: asyncio.BaseProtocol, timer: asyncio.TimerHandle) -> None:
        self._protocol = protocol
        self._timer = timer

    def data_received(self, data: bytes) -> None:
        pass  # the peer was dropped: what it sends is read only to see its end

    def eof_received(self) -> bool:
        return False  # the transport closes: both sides have ended

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        self._protocol.connection_lost(exc)


def linger(socket: asyncio.Transport, close_timeout: float) -> None:
    """Half-close ``socket`` once what is buffered (the close frame last) has gone out,
    discard whatever the peer sends after it, close the socket when the peer ends its
    side, and abort it ``close_timeout`` seconds from now at the latest.

    The peer sees the close at once, and the connection ends as soon as the peer has
    closed too. Where the socket cannot be half-closed (TLS), it is left unread until it
    is aborted at ``close_timeout``. A socket already closing is left to close.
    """
    if socket.is_closing():
        return
    timer = asyncio.get_running_loop().call_later(close_timeout, socket.abort)
    if not socket.can_write_eof():
        socket.pause_reading()
        return
    socket.write_eof()
    socket.set_protocol(_Lingering(socket.get_protocol(), timer))
    socket.resume_reading()
