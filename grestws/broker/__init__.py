"""Brokers: how a push to a room, a user or a connection reaches the other processes of a
cluster, and who is present where.

A :class:`Broker` carries :class:`Envelope` s between the processes ("nodes") serving one
App: each node delivers what it publishes to its own connections itself, and every other
node gets the envelope once and delivers it to its own. :class:`LocalBroker`, the default,
has no other node. :class:`~grestws.broker.redis.RedisBroker` (``pip install
"grestws[redis]"``) uses Redis pub/sub, and keeps presence in Redis with expiry.

The delivery guarantee: at most once. While the broker's link is up, every node gets every
envelope exactly once; while it is down, envelopes for other nodes are dropped and counted
(:attr:`BrokerStats.dropped`), never queued without bound and never waited for, and the
node's own connections still get everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import msgspec

from grestws.broker.envelopes import Envelope, Target, decode_envelope, encode_envelope

if TYPE_CHECKING:  # the recovery package imports this module
    from grestws.recovery import History, Recovery
    from grestws.recovery.memory import MemoryHistory

__all__ = (
    "Broker",
    "BrokerStats",
    "Envelope",
    "LocalBroker",
    "Member",
    "Target",
    "decode_envelope",
    "encode_envelope",
    "new_node_id",
    "redact",
)


class Member(msgspec.Struct, frozen=True, gc=False):
    """One connection present in a room: its id, its user (``None``: no identity), and
    the node it is connected to."""

    room: str
    connection: str
    user: str | None
    node: str


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not sep or not at or not colon:
        return url
    return f"{scheme}{sep}{user}:***@{host}{slash}{path}"


def new_node_id() -> str:
    """A node id unique across a cluster's processes and restarts."""
    return uuid.uuid4().hex[:16]


class BrokerStats(msgspec.Struct, kw_only=True):
    """What a broker counts; read it as ``app.rooms.broker.stats``.

    Attributes:
        published: Envelopes handed to the other nodes.
        received: Envelopes from other nodes delivered here.
        dropped: Envelopes for other nodes not sent because the link was down or failed.
        malformed: Messages on the channel that were not envelopes (ignored).
        reconnects: Times the link to the other nodes was made again after a loss.
        connected: Whether the link is up now.
    """

    published: int = 0
    received: int = 0
    dropped: int = 0
    malformed: int = 0
    reconnects: int = 0
    connected: bool = False


Deliver = Callable[[Envelope], None]
"""Where a broker hands every envelope from another node: called in the event loop, must
not block."""

LocalMembers = Callable[[], Iterable[Member]]
"""What a broker asks for the node's own room members, to keep presence fresh."""


class Broker(Protocol):
    """What :class:`~grestws.rooms.Rooms` needs of a broker.

    Attributes:
        node: This process's id in the cluster.
        stats: The counts (:class:`BrokerStats`).
    """

    node: str
    stats: BrokerStats

    async def start(self, deliver: Deliver, local_members: LocalMembers) -> None:
        """Connect and subscribe; from then on hand envelopes of other nodes to ``deliver``.
        Returns once started, even if the link is not up yet (it keeps trying)."""
        ...

    async def stop(self) -> None:
        """Unsubscribe, forget this node's presence and disconnect. Idempotent."""
        ...

    async def publish(self, envelope: Envelope) -> bool:
        """Hand ``envelope`` to every other node (and, when it has a seq, to the history);
        False (and counted as dropped) when it could not be sent. Envelopes are handed
        over in the order of the calls: once a call returns True, every envelope
        published before it has been handed over too. Never waits longer than the
        broker's operation timeout."""
        ...

    def presence_changed(self, joined: Iterable[Member], left: Iterable[Member]) -> None:
        """Note members that joined or left; written soon, in the background."""
        ...

    async def present(self, room: str) -> list[Member] | None:
        """The members of ``room`` on every node, or None when only this node is known
        (the local broker, or the link is down)."""
        ...

    def keep_history(self, recovery: Recovery) -> History:
        """Keep every published envelope that has a seq, and the recovery sessions, as
        ``recovery`` says, where every node can read them; called once, before
        :meth:`start`."""
        ...


class LocalBroker:
    """The broker of a single process: no other node, nothing to send or keep."""

    def __init__(self) -> None:
        self.node = new_node_id()
        self.stats = BrokerStats(connected=True)
        self._history: MemoryHistory | None = None

    def __repr__(self) -> str:
        return "<LocalBroker>"

    async def start(self, deliver: Deliver, local_members: LocalMembers) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, envelope: Envelope) -> bool:
        if envelope.seq and self._history is not None:
            self._history.append(envelope)
        return True

    def keep_history(self, recovery: Recovery) -> History:
        """Keep the history in this process's memory."""
        from grestws.recovery.memory import MemoryHistory

        self._history = MemoryHistory(recovery)
        return self._history

    def presence_changed(self, joined: Iterable[Member], left: Iterable[Member]) -> None:
        pass

    async def present(self, room: str) -> list[Member] | None:
        return None
