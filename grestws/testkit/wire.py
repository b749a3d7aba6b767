"""What a test client sent and received: :class:`WireLog`, and the transport that keeps it.

Every frame of a :class:`~grestws.testkit.TestClient` goes through a
:class:`RecordingTransport`, which notes it in the client's :class:`WireLog` before the
session sees it. Failed expectations quote the end of the log, and the pytest plugin adds
the logs of every client a failed test made to its report. The log is bounded: the latest
:data:`KEPT` frames, each shown cut at :data:`SHOWN` characters.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator

from grestws.transports import Sink, Transport

__all__ = ("KEPT", "SHOWN", "Direction", "RecordingTransport", "WireLog", "collected", "collecting")

KEPT = 500
"""How many of the latest frames a log keeps."""
SHOWN = 400
"""How many characters of a frame a log shows."""


class Direction(enum.Enum):
    """Which way a frame went, from the test client's side."""

    SENT = "->"
    RECEIVED = "<-"
    CLOSED = "xx"


class WireLog:
    """The latest frames a test client sent and received, in order.

    Args:
        name: Who the log is of, as shown in reports (``ann``, ``ChatApi #1``).
    """

    __slots__ = ("_entries", "dropped", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: deque[tuple[Direction, str]] = deque(maxlen=KEPT)
        self.dropped = 0
        """How many frames fell off the front of the log."""

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[Direction, str]]:
        return iter(self._entries)

    def note(self, direction: Direction, frame: bytes | bytearray | str) -> None:
        """Add one frame (or, for CLOSED, the close code and reason)."""
        if len(self._entries) == KEPT:
            self.dropped += 1
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "backslashreplace")
        if len(text) > SHOWN:
            text = f"{text[:SHOWN]}... ({len(text) - SHOWN} more characters)"
        self._entries.append((direction, text))

    def render(self, last: int | None = None) -> str:
        """The log as text, one frame a line: ``-> r:ChatApi.sendMessage:1:{...}``;
        only the ``last`` frames if given."""
        entries = list(self._entries)
        skipped = self.dropped
        if last is not None and len(entries) > last:
            skipped += len(entries) - last
            entries = entries[len(entries) - last :]
        lines = [f"wire log of {self.name} (-> sent, <- received):"]
        if skipped:
            lines.append(f"   ... {skipped} earlier frames")
        lines.extend(f"   {direction.value} {text}" for direction, text in entries)
        if not entries:
            lines.append("   (nothing)")
        return "\n".join(lines)


class RecordingTransport:
    """A :class:`~grestws.transports.Transport` that notes every frame in a :class:`WireLog`
    and hands it on to the transport it wraps, unchanged.

    Concurrency and cancellation are the wrapped transport's.
    """

    __slots__ = ("_inner", "_noted_close", "log")

    def __init__(self, inner: Transport, log: WireLog) -> None:
        self._inner = inner
        self._noted_close = False
        self.log = log

    def deliver_to(self, sink: Sink) -> None:
        note = self.log.note

        def received(frame: bytes | bytearray) -> None:
            note(Direction.RECEIVED, frame)
            sink(frame)

        self._inner.deliver_to(received)

    def write(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        written = self._inner.write(frame, limit)
        if written:
            self.log.note(Direction.SENT, frame)
        return written

    @property
    def buffered(self) -> int:
        return self._inner.buffered

    async def send(self, frame: bytes | bytearray, limit: int | None = None) -> bool:
        if limit is not None and self._inner.buffered > limit:
            return False
        self.log.note(Direction.SENT, frame)  # before the wait, so a quick answer comes after it
        return await self._inner.send(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)

    def drop(self, code: int, reason: str) -> None:
        self._inner.drop(code, reason)

    async def wait_closed(self) -> tuple[int | None, str]:
        code, reason = await self._inner.wait_closed()
        if not self._noted_close:
            self._noted_close = True
            self.log.note(Direction.CLOSED, f"closed {code} {reason!r}")
        return code, reason


_collected: list[WireLog] | None = None


def collecting(on: bool) -> None:
    """Start (``True``) or stop keeping every new :class:`WireLog`, for a test's report."""
    global _collected
    _collected = [] if on else None


def collected() -> list[WireLog]:
    """The logs made since :func:`collecting` started."""
    return [] if _collected is None else list(_collected)


def keep(log: WireLog) -> None:
    """Remember ``log`` for the running test's report, if one is collecting."""
    if _collected is not None:
        _collected.append(log)
