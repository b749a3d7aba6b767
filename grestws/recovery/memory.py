"""The history of a single process: pushes and sessions in memory."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping

from grestws.broker.envelopes import Envelope
from grestws.recovery import Recovery, SessionRecord, read_after

__all__ = ("MemoryHistory",)


class MemoryHistory:
    """A :class:`~grestws.recovery.History` in this process's memory: what
    :class:`~grestws.broker.LocalBroker` keeps. Gone when the process ends, so a client
    of a server that restarted is told it could not be recovered. ``clock`` gives the
    time in seconds since the epoch (a test passes a fake one).

    Concurrency: everything runs on the App's event loop and never waits.
    """

    def __init__(self, recovery: Recovery, *, clock: Callable[[], float] = time.time) -> None:
        self.recovery = recovery
        self._streams: dict[str, collections.deque[Envelope]] = {}
        self._complete_from: dict[str, int] = {}
        self._sessions: dict[str, tuple[SessionRecord, float]] = {}
        self._now = clock

    def __repr__(self) -> str:
        kept = sum(len(stream) for stream in self._streams.values())
        return f"<MemoryHistory {kept} pushes, {len(self._sessions)} sessions>"

    def append(self, envelope: Envelope) -> None:
        """Keep ``envelope`` (one with a seq), dropping what is older than the window."""
        stream = self._streams.get(envelope.origin)
        if stream is None:
            stream = self._streams[envelope.origin] = collections.deque(maxlen=self.recovery.max_entries)
            self._complete_from[envelope.origin] = envelope.seq
        if len(stream) == stream.maxlen:
            self._complete_from[envelope.origin] = stream[0].seq + 1
        stream.append(envelope)
        oldest = int((self._now() - self.recovery.window) * 1000)
        while stream and stream[0].time < oldest:
            self._complete_from[envelope.origin] = stream.popleft().seq + 1

    async def read(self, positions: Mapping[str, int], since: int) -> list[Envelope] | None:
        missed: list[Envelope] = []
        for node, stream in self._streams.items():
            found = read_after(list(stream), positions.get(node), since, self._complete_from[node])
            if found is None:
                return None
            missed.extend(found)
        return missed

    def save(self, record: SessionRecord, *, open: bool) -> None:
        now = self._now()
        for token, (_, expires) in list(self._sessions.items()):
            if expires <= now:
                del self._sessions[token]
        self._sessions[record.token] = (record, float("inf") if open else now + self.recovery.window)

    async def load(self, token: str) -> SessionRecord | None:
        found = self._sessions.get(token)
        if found is None or found[1] <= self._now():
            return None
        return found[0]
