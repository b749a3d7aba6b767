"""The handshake's first frames, either side: waiting for ``h`` (server) or ``k``/``x``
(client) while keeping what the peer sends right after it for the session."""

from __future__ import annotations

import asyncio

from grestws.exceptions import ConnectionClosedError, FrameError
from grestws.protocol import codec
from grestws.protocol.frames import Frame, FrameType
from grestws.session import Transport

__all__ = ("FirstFrame",)


class FirstFrame:
    """A transport's sink during a handshake: waits for the first frame of the given kinds,
    drops the frames before it, and keeps the ones after it for the session, up to
    ``keep`` bytes (:attr:`overflowed` tells of more)."""

    __slots__ = ("_first", "_keep", "_kept", "_kinds", "after", "overflowed")

    def __init__(self, *kinds: FrameType, keep: int = 1 << 20) -> None:
        self._kinds = kinds
        self._first: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._keep = keep
        self._kept = 0
        self.after: list[bytes] = []
        self.overflowed = False

    def receive(self, raw: bytes) -> None:
        """The sink: called by the transport for every frame until the session takes over."""
        if self._first.done():
            self._kept += len(raw) + 64
            if self._kept > self._keep:
                self.overflowed = True
            else:
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
