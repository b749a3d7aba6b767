"""Stream positions: where a push stands in the stream of the process that sent it.

A server with recovery on numbers every push it publishes (to a room, a user, a
connection, everyone) in the stream of its own node: ``(node, seq)``, seq from 1 up. A
client that asked for recovery gets its pushes with the position in the ``m`` frame's id
field, as ``<node>.<seq>``; a client that did not gets the same frames without it, as
PROTOCOL.md has them. The client remembers the last position it got from each node
(:class:`Positions`), sends them back when it reconnects, and the server replays what came
after. See ``docs/protocol.md``, "Recovery".
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

__all__ = (
    "MAX_NODES",
    "RECOVERY_HEADER",
    "Positions",
    "RecoveryAccepted",
    "RecoveryOffer",
    "Resumption",
    "format_position",
    "parse_position",
    "positioned_frame",
)

RECOVERY_HEADER = "grestws-recovery"
"""The ``h`` header in which a client asks for recovery (a JSON :class:`RecoveryOffer`)."""

MAX_NODES = 256
"""The most nodes a client keeps a position for; the longest unheard-of is forgotten."""

_MAX_SEQ_DIGITS = 16


class RecoveryOffer(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a client sends in the :data:`RECOVERY_HEADER` header: nothing on its first
    connection (``{}``: "number my pushes"), and on a reconnect the session it had and
    the last position it got from each node."""

    session: str | None = None
    positions: dict[str, int] = msgspec.field(default_factory=dict[str, int])


class RecoveryAccepted(msgspec.Struct, frozen=True):
    """The ``recovery`` member of the ``k`` frame's data, sent only to a client that
    offered recovery.

    Attributes:
        session: The session to name when reconnecting.
        recovered: None on a new session; True when every push the client missed was
            sent after ``k`` (before anything newer); False when that was not possible
            (the session expired, or the history no longer reaches back far enough).
        window: Seconds the server keeps a session after its connection drops.
    """

    session: str
    recovered: bool | None
    window: float


def format_position(node: str, seq: int) -> bytes:
    """The id field of a positioned ``m`` frame: ``<node>.<seq>``."""
    return b"%b.%d" % (node.encode(), seq)


def positioned_frame(frame: bytes, node: str, seq: int) -> bytes:
    """The ``m`` frame ``frame`` with the position ``node.seq`` in its (empty) id field."""
    cut = frame.index(b":", 2) + 1
    return frame[:cut] + format_position(node, seq) + frame[cut:]


def parse_position(raw: bytes) -> tuple[str, int] | None:
    """``(node, seq)`` from an id field made by :func:`format_position`; None when it is
    not one."""
    node, dot, seq = raw.rpartition(b".")
    if not dot or not node or not seq.isdigit() or len(seq) > _MAX_SEQ_DIGITS or len(node) > 64:
        return None
    try:
        return node.decode("ascii"), int(seq)
    except UnicodeDecodeError:
        return None


class Positions:
    """The last position a client got from each node, and the duplicates it must skip.

    A push at or before the last position of its node is a duplicate (a replay of what
    arrived already) and is skipped; any other moves the node's position forward. At most
    :data:`MAX_NODES` nodes are kept: the one heard from longest ago is forgotten first.
    """

    __slots__ = ("_last",)

    def __init__(self, positions: Mapping[str, int] | None = None) -> None:
        self._last: dict[str, int] = dict(positions or {})

    def take(self, raw: bytes) -> bool:
        """Note the position ``raw`` (an ``m`` id field); False when the push is a
        duplicate to skip. A malformed position is taken (the push is not lost)."""
        found = parse_position(raw)
        if found is None:
            return True
        node, seq = found
        last = self._last.pop(node, 0)
        if seq <= last:
            self._last[node] = last
            return False
        self._last[node] = seq
        if len(self._last) > MAX_NODES:
            del self._last[next(iter(self._last))]
        return True

    def snapshot(self) -> dict[str, int]:
        """The positions, to send when reconnecting."""
        return dict(self._last)


class _Acceptance(msgspec.Struct):
    """The data of a ``k`` frame, as far as recovery goes."""

    recovery: RecoveryAccepted | None = None


_acceptance = msgspec.json.Decoder(_Acceptance)
_encoder = msgspec.json.Encoder()


class Resumption:
    """A client's side of recovery across its connections: the session the server gave,
    and the positions of what arrived.

    Concurrency: used by one client, on its event loop.
    """

    __slots__ = ("positions", "session")

    def __init__(self) -> None:
        self.session: str | None = None
        """The session to resume (None: none yet, or the server keeps none)."""
        self.positions = Positions()

    def offer(self) -> str:
        """The :data:`RECOVERY_HEADER` value for the next handshake."""
        session = self.session
        offer = RecoveryOffer() if session is None else RecoveryOffer(session, self.positions.snapshot())
        return _encoder.encode(offer).decode()

    def accepted(self, data: bytes | memoryview) -> bool | None:
        """Take what the server's ``k`` (its ``data``) says of recovery.

        Returns:
            None when the server keeps nothing, or gave a new session to a client that
            had none; else whether the client got everything it missed.
        """
        try:
            recovery = _acceptance.decode(data).recovery
        except msgspec.MsgspecError:
            recovery = None
        if recovery is None:  # a server that keeps nothing
            self.session = None
            return None
        if recovery.recovered is not True:
            self.positions = Positions()  # a new session: what came before means nothing
        self.session = recovery.session
        return recovery.recovered
