"""An in-memory transport pair: two ends of a pipe that carries whole frames.

Each end implements :class:`~grestws.session.Transport`. Frames arrive in the order they
were sent, one ``recv`` per ``send``, with no copying and no event-loop round trip on the
sending side, so tests that use it are deterministic. Closing either end closes both:
frames already sent are still delivered, then ``recv`` raises
:class:`~grestws.exceptions.ConnectionClosedError` with the close code and reason, as
websockets does after a closing handshake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from grestws.exceptions import ConnectionClosedError

__all__ = ("MemoryTransport", "memory_pair")


class _Link:
    """What both ends share: whether, and how, the pipe was closed."""

    __slots__ = ("closed", "code", "reason")

    def __init__(self) -> None:
        self.code: int | None = None
        self.reason = ""
        self.closed = asyncio.Event()


class MemoryTransport:
    """One end of a :func:`memory_pair`.

    Attributes:
        name: A label for ``repr`` (``"a"`` or ``"b"``).
    """

    __slots__ = ("_eof", "_inbox", "_link", "_outbox", "_peer", "_sink", "name")

    def __init__(
        self,
        name: str,
        inbox: asyncio.Queue[bytes | None],
        outbox: asyncio.Queue[bytes | None],
        link: _Link,
    ) -> None:
        self.name = name
        self._inbox = inbox
        self._outbox = outbox
        self._link = link
        self._eof = False
        self._peer: MemoryTransport | None = None
        self._sink: Callable[[bytes | bytearray], None] | None = None

    def __repr__(self) -> str:
        state = "open" if self._link.code is None else f"closed {self._link.code}"
        return f"<MemoryTransport {self.name} {state}>"

    @property
    def closed(self) -> bool:
        """True once either end was closed."""
        return self._link.code is not None

    @property
    def close_code(self) -> int | None:
        """The code the pipe was closed with, ``None`` while it is open."""
        return self._link.code

    @property
    def close_reason(self) -> str:
        """The reason the pipe was closed with (empty while it is open)."""
        return self._link.reason

    @property
    def buffered(self) -> int:
        """Always 0: the pipe hands every frame over at once."""
        return 0

    async def send(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        """Hand ``frame`` to the other end; never waits (the pipe is unbounded, so
        ``limit`` never holds it back).

        Cancel-safe: it does not suspend, so a frame is either sent whole or not at all.

        Returns:
            True.

        Raises:
            ConnectionClosedError: the pipe is closed; carries its code and reason.
        """
        return self.write(frame)

    def write(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        """Hand ``frame`` to the other end, as :meth:`send` does; nothing is ever
        buffered, so ``limit`` never holds it back.

        Returns:
            True.

        Raises:
            ConnectionClosedError: the pipe is closed; carries its code and reason.
        """
        if self._link.code is not None:
            raise ConnectionClosedError(self._link.code, self._link.reason)
        frame = bytes(frame)  # the other end reads what was sent, whatever the caller does next
        peer = self._peer
        if peer is not None and peer._sink is not None:
            asyncio.get_running_loop().call_soon(peer._deliver, frame)
        else:
            self._outbox.put_nowait(frame)
        return True

    def _deliver(self, frame: bytes | bytearray) -> None:
        if self._sink is not None:
            self._sink(frame)

    def deliver_to(self, sink: Callable[[bytes | bytearray], None]) -> None:
        """Push every frame from the other end to ``sink`` from now on, in order, each in a
        loop callback of its own (as a network would); frames queued so far come first.

        Once set, ``recv`` gets nothing more.
        """
        while not self._inbox.empty():
            frame = self._inbox.get_nowait()
            if frame is None:
                self._inbox.put_nowait(None)
                break
            sink(frame)
        self._sink = sink

    async def wait_closed(self) -> tuple[int | None, str]:
        """Wait until the pipe is closed (after the frames sent before the close are
        delivered to a sink); return the close code and reason."""
        await self._link.closed.wait()
        return self._link.code, self._link.reason

    async def recv(self) -> bytes:
        """The next frame from the other end, waiting for one if none is queued.

        Frames sent before the pipe was closed are still delivered; after them, ``recv``
        raises. Cancel-safe: cancelling a waiting ``recv`` loses no frame. Concurrent
        calls each get a different frame, in the order they started waiting.

        Raises:
            ConnectionClosedError: the pipe is closed and every frame sent before the
                close was received; carries the close code and reason.
        """
        if not self._eof:
            frame = await self._inbox.get()
            if frame is not None:
                return frame
            self._eof = True
            self._inbox.put_nowait(None)  # wake any other task waiting on this end
        raise ConnectionClosedError(self._link.code, self._link.reason)

    def drop(self, code: int, reason: str) -> None:
        """Close both ends at once with ``code`` and ``reason``, as :meth:`close` does."""
        self._close(code, reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close both ends with ``code`` and ``reason``.

        Idempotent: only the first close counts, whichever end made it. Cancel-safe: it
        does not suspend.
        """
        self._close(code, reason)

    def _close(self, code: int, reason: str) -> None:
        if self._link.code is not None:
            return
        self._link.code = code
        self._link.reason = reason
        self._inbox.put_nowait(None)
        self._outbox.put_nowait(None)
        asyncio.get_running_loop().call_soon(self._link.closed.set)


def memory_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected transports: what one sends, the other receives.

    The queues bind to the running event loop when first used, so the pair may be made
    outside a coroutine and used inside one loop.
    """
    a_to_b: asyncio.Queue[bytes | None] = asyncio.Queue()
    b_to_a: asyncio.Queue[bytes | None] = asyncio.Queue()
    link = _Link()
    a = MemoryTransport("a", inbox=b_to_a, outbox=a_to_b, link=link)
    b = MemoryTransport("b", inbox=a_to_b, outbox=b_to_a, link=link)
    a._peer, b._peer = b, a
    return a, b
