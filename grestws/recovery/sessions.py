"""The server's side of recovery, per connection: :class:`Sessions`.

A connection whose client asked for recovery is *tracked*: it has a
:class:`~grestws.recovery.SessionRecord` (kept in the :class:`~grestws.recovery.History`
while it is open, and for the window after), and gets its pushes with their positions.
While it is being resumed its pushes are *held*: the replay of what it missed goes out
first, then what was held, without what the replay already sent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

from grestws.broker.envelopes import Envelope, Target
from grestws.connections import ServerConnection
from grestws.contract.contract import ContractHalf
from grestws.permissions import permission_from_builtins
from grestws.protocol.frames import CLOSE_TRY_AGAIN_LATER
from grestws.protocol.positions import RecoveryAccepted, RecoveryOffer, positioned_frame
from grestws.recovery import History, SessionRecord

__all__ = ("Sessions", "Tracked", "now_ms")

_offer_decoder = msgspec.json.Decoder(RecoveryOffer)
_encoder = msgspec.json.Encoder()


def now_ms() -> int:
    """The time in milliseconds since the epoch, as pushes and sessions record it."""
    return int(time.time() * 1000)


class _Accept(msgspec.Struct, frozen=True):
    recovery: RecoveryAccepted


class Tracked:
    """A connection with a session: its record, and its held pushes while it resumes."""

    __slots__ = ("held", "record", "replay")

    def __init__(self, record: SessionRecord, *, hold: bool) -> None:
        self.record = record
        self.held: list[tuple[bytes, str, int]] | None = [] if hold else None
        self.replay: list[tuple[bytes, str, int]] = []
        """What the client missed, to write right after ``k``."""


class Sessions:
    """The tracked connections of one App, and their records in ``history``.

    Concurrency: everything runs on the App's event loop; nothing here waits but
    :meth:`load` and the history's reads.
    """

    def __init__(self, history: History) -> None:
        self.history = history
        self._tracked: dict[ServerConnection[Any], Tracked] = {}
        self._holders: dict[str, ServerConnection[Any]] = {}

    def get(self, conn: ServerConnection[Any]) -> Tracked | None:
        """The tracking of ``conn``, if it has a session."""
        return self._tracked.get(conn)

    @staticmethod
    def offer(conn: ServerConnection[Any]) -> RecoveryOffer | None:
        """What ``conn``'s client asked for in its handshake; None when it did not ask
        (or asked in a form that means nothing: it is then served as if it had not)."""
        raw = conn.recovery_request
        if raw is None:
            return None
        try:
            return _offer_decoder.decode(raw)
        except msgspec.MsgspecError:
            return None

    async def load(self, conn: ServerConnection[Any], offer: RecoveryOffer) -> SessionRecord | None:
        """The session ``offer`` names, if it is kept and ``conn`` may resume it: the same
        schema path and the same identity."""
        if offer.session is None:
            return None
        record = await self.history.load(offer.session)
        if record is None or record.path != conn.path:
            return None
        user = None if conn.identity is None else conn.identity.id
        return record if record.user == user else None

    def start(self, conn: ServerConnection[Any]) -> SessionRecord:
        """A new session for ``conn``."""
        identity = conn.identity
        record = SessionRecord(
            token=secrets.token_urlsafe(24),
            path=conn.path,
            connection=conn.id,
            user=None if identity is None else identity.id,
            created=now_ms(),
        )
        self.track(conn, record, hold=False)
        return record

    def restart(self, conn: ServerConnection[Any]) -> SessionRecord:
        """A new session for ``conn``, which resumed one whose missed pushes cannot all
        be found: it keeps the rooms (joined from now on), with a new token and start,
        so that a later resume replays nothing from before."""
        tracked = self._tracked[conn]
        old = tracked.record
        if self._holders.get(old.token) is conn:
            del self._holders[old.token]
        now = now_ms()
        record = SessionRecord(
            token=secrets.token_urlsafe(24),
            path=old.path,
            connection=old.connection,
            user=old.user,
            created=now,
            rooms=dict.fromkeys(old.rooms, now),
        )
        tracked.record = record
        self._holders[record.token] = conn
        self.history.save(record, open=True)
        return record

    def track(
        self, conn: ServerConnection[Any], record: SessionRecord, *, hold: bool
    ) -> ServerConnection[Any] | None:
        """Track ``conn`` under ``record`` (holding its pushes if ``hold``), and keep the
        record. Returns the connection that held the session before on this process, if
        one did and is still here."""
        previous = self._holders.get(record.token)
        self._tracked[conn] = Tracked(record, hold=hold)
        self._holders[record.token] = conn
        self.history.save(record, open=True)
        return previous if previous is not conn else None

    def accepted(self, record: SessionRecord, recovered: bool | None) -> bytes:
        """The data of the ``k`` frame for a tracked connection."""
        window = self.history.recovery.window
        return _encoder.encode(_Accept(RecoveryAccepted(record.token, recovered, window)))

    def joined(self, conn: ServerConnection[Any], room: str, at: int | None = None) -> None:
        """``conn`` joined ``room`` (at ``at`` ms, now by default): note it in its record."""
        tracked = self._tracked.get(conn)
        if tracked is not None and room not in tracked.record.rooms:
            tracked.record.rooms[room] = now_ms() if at is None else at
            self.history.save(tracked.record, open=True)

    def left(self, conn: ServerConnection[Any], room: str) -> None:
        """``conn`` left ``room`` while open: note it in its record."""
        tracked = self._tracked.get(conn)
        if tracked is not None and tracked.record.rooms.pop(room, None) is not None:
            self.history.save(tracked.record, open=True)

    def push(
        self, conn: ServerConnection[Any], tracked: Tracked, frame: bytes, origin: str, seq: int
    ) -> bool:
        """Write the positioned ``frame`` to ``conn``, or hold it while ``conn`` resumes.

        A push a tracked connection cannot take (its client reads too slowly) is not
        skipped, which would leave a gap its client never learns of: the connection is
        closed with 1013 instead, and its client resumes from what it has.
        """
        held = tracked.held
        if held is not None:
            held.append((frame, origin, seq))
            return True
        if conn.push(frame):
            return True
        if conn.accepted and not conn.closed:
            conn.close_soon(CLOSE_TRY_AGAIN_LATER, "Too slow to read; what it missed is kept")
        return False

    async def release(self, conn: ServerConnection[Any]) -> int:
        """Write the replay (positioned frames of what ``conn``'s client missed), then what
        was held meanwhile that the replay did not carry, then stop holding. Both wait
        while the write buffer is full (flow control); pushes that come meanwhile are
        held. Returns how many frames were written (fewer when the connection closed).
        Cancelling it leaves the connection holding its pushes."""
        tracked = self._tracked.get(conn)
        if tracked is None:
            return 0
        replay, tracked.replay = tracked.replay, []
        sent: set[tuple[str, int]] = set()
        written = 0
        for frame, origin, seq in replay:
            if not await conn.send_frame(frame):
                return written
            sent.add((origin, seq))
            written += 1
        while tracked.held:
            held, tracked.held = tracked.held, []
            for frame, origin, seq in held:
                if (origin, seq) in sent:
                    continue
                if not await conn.send_frame(frame):
                    return written
                written += 1
        tracked.held = None
        return written

    def superseded(self, conn: ServerConnection[Any]) -> None:
        """``conn``'s session was resumed by another connection: stop tracking it, and
        leave the session's record to the connection that resumed it."""
        tracked = self._tracked.pop(conn, None)
        if tracked is not None and self._holders.get(tracked.record.token) is conn:
            del self._holders[tracked.record.token]

    def forget(self, conn: ServerConnection[Any]) -> None:
        """``conn`` closed: its session is kept for the window, unless another connection
        resumed it meanwhile."""
        tracked = self._tracked.pop(conn, None)
        if tracked is None:
            return
        token = tracked.record.token
        if self._holders.get(token) is conn:
            del self._holders[token]
            self.history.save(tracked.record, open=False)

    def missed(
        self,
        conn: ServerConnection[Any],
        tracked: Tracked,
        found: list[Envelope],
        half_of: Callable[[bytes], ContractHalf | None],
    ) -> list[tuple[bytes, str, int]]:
        """The positioned frames of ``found`` that ``conn``'s session would have got: its
        targets (:meth:`matches`), its permission, and its contract (``half_of`` names
        the contract half of a frame's method)."""
        half = conn.schema.contract.server_to_client
        missed: list[tuple[bytes, str, int]] = []
        for envelope in found:
            if not self.matches(tracked.record, envelope):
                continue
            only = envelope.only
            if only is not None and not permission_from_builtins(only).allows(conn.identity):
                continue
            if half_of(envelope.frame) is not half:
                continue
            origin, seq = envelope.origin, envelope.seq
            missed.append((positioned_frame(envelope.frame, origin, seq), origin, seq))
        return missed

    def matches(self, record: SessionRecord, envelope: Envelope) -> bool:
        """Whether ``envelope`` went to the session's connection had it been open: its
        target, after the session joined it, and not excluded (the permission and the
        contract are checked when it is written)."""
        if record.connection in envelope.exclude:
            return False
        target = envelope.target
        if target is Target.ROOM:
            joined = record.rooms.get(envelope.name)
            return joined is not None and envelope.time >= joined
        if target is Target.USER:
            return envelope.name == record.user and envelope.time >= record.created
        if target is Target.CONNECTION:
            return envelope.name == record.connection
        if target is Target.EVERYONE:
            return envelope.time >= record.created
        return False
