"""Recovery: a client that reconnects gets the pushes it missed, in order, once.

With ``App(recovery=Recovery(window=120))`` every push to a room, a user, a connection or
everyone is numbered in its node's stream and kept in a history: in memory on a single
process (:class:`~grestws.recovery.memory.MemoryHistory`), in Redis streams with the Redis
broker. A client that asks for recovery (grestws's does, unless told not to) gets a
session at its handshake, and each push with its position. When it reconnects within the
window, on any node, it names its session and its last positions; the server puts the
new connection back in the session's rooms, under the same connection id, sends what the
client missed after ``k`` (before anything newer), and tells the client whether that was
everything. When it was not (the window passed, the history was trimmed, the broker lost
pushes), the client's setup callback is told (``LinkInfo.recovered`` False), so the
application fetches its state again.

The history and the sessions sit behind :class:`History`; a broker gives one with
:meth:`Broker.keep_history <grestws.broker.Broker.keep_history>`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Protocol

import msgspec

from grestws.broker.envelopes import Envelope

__all__ = ("History", "Recovery", "SessionRecord", "read_after")


class Recovery(msgspec.Struct, frozen=True, kw_only=True):
    """How much an App keeps so that reconnecting clients miss nothing.

    Attributes:
        window: Seconds a session outlives its connection: a client that comes back
            later starts anew (and is told so).
        max_entries: Pushes kept per node, at most; a client that missed more than
            that is told it could not be recovered.
    """

    window: float = 120.0
    max_entries: int = 10_000

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise ValueError("window must be a positive number of seconds")
        if self.max_entries < 1:
            raise ValueError("max_entries must be at least 1")


class SessionRecord(msgspec.Struct, array_like=True, kw_only=True):
    """What a session needs to be resumed on any node.

    Attributes:
        token: The session's secret name, known to its client only.
        path: The schema path it was opened at.
        connection: The connection id, kept by the connections that resume it.
        user: The identity id it acts for (None: no identity); a resume must present it.
        created: When the session began, in ms since the epoch.
        rooms: The rooms it is in, each with when it joined (ms since the epoch).
    """

    token: str
    path: str
    connection: str
    user: str | None
    created: int
    rooms: dict[str, int] = msgspec.field(default_factory=dict[str, int])


class History(Protocol):
    """Where pushes and sessions are kept for recovery. Pushes are added by the broker
    that publishes them (see :meth:`Broker.keep_history <grestws.broker.Broker.keep_history>`).

    Attributes:
        recovery: The window and bounds it keeps to.
    """

    recovery: Recovery

    async def read(self, positions: Mapping[str, int], since: int) -> list[Envelope] | None:
        """Every push kept after ``positions`` (node -> last seq the client got), and
        of nodes not in it every push from ``since`` (ms since the epoch) on, in order
        within each node; None when that cannot be known to be complete (entries
        trimmed or lost, or the store cannot be read)."""
        ...

    def save(self, record: SessionRecord, *, open: bool) -> None:
        """Keep ``record`` (written soon, in the background): while its connection is
        ``open``, and for the window after it closed."""
        ...

    async def load(self, token: str) -> SessionRecord | None:
        """The session ``token`` names, if it is still kept."""
        ...


def read_after(
    entries: list[Envelope], after: int | None, since: int, complete_from: int
) -> list[Envelope] | None:
    """The entries of one node's stream a client missed, from ``entries`` (that node's
    kept entries, in order): those after seq ``after`` when the client got something from
    the node, else those published at ``since`` or later. None when some of them may
    be missing: the kept entries do not join up with ``after``, skip a seq, or were
    trimmed (``complete_from`` is the first seq the stream still holds every entry from;
    1 when nothing was trimmed)."""
    if after is not None:
        missed = [entry for entry in entries if entry.seq > after]
        first = after + 1
        if (missed and missed[0].seq != first) or (not missed and complete_from > first):
            return None
    else:
        missed = [entry for entry in entries if entry.time >= since]
        if complete_from > 1 and (not entries or entries[0].time >= since):
            return None  # what was trimmed may have been published after since
    for earlier, later in itertools.pairwise(missed):
        if later.seq != earlier.seq + 1:
            return None  # a push that never reached the history: lost
    return missed
