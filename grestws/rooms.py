"""Rooms, users and connections across a cluster: ``app.rooms``.

A connection joins and leaves rooms on the server (``app.rooms.join(conn, "general")``);
it leaves them all when it closes. A push goes to a room, to every connection of a user,
to one connection by id, or to everyone, on every process of the cluster: it is encoded
once, written as the same bytes to each member, and handed to the other processes once,
through the App's :class:`~grestws.broker.Broker`. ``exclude`` leaves connections out
(everyone but the sender); ``only`` keeps the members whose identity a permission allows
(``Scope("chat:moderator")``).

Writing never waits for a member: one whose client reads too slowly is skipped and
counted, or closed with 1013 past the limits' bound, as :meth:`ServerConnection.push
<grestws.connections.ServerConnection.push>` does. What the sends return is how many
connections of this process the push was written to; the other processes count their own.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar, overload

import msgspec

from grestws.broker import Broker, Envelope, LocalBroker, Member, Target
from grestws.connections import Connections, ServerConnection
from grestws.contract.contract import ContractHalf
from grestws.contract.methods import MethodKind, MethodSpec
from grestws.exceptions import ContractError, InvalidStateError
from grestws.permissions import Permission, permission_from_builtins, permission_to_builtins
from grestws.protocol import codec
from grestws.protocol.frames import CLOSE_NORMAL, CLOSE_POLICY
from grestws.protocol.positions import positioned_frame
from grestws.recovery import Recovery
from grestws.recovery.sessions import Sessions, now_ms
from grestws.topics import topic_room

__all__ = ("Exclude", "Rooms", "push_frame", "topic_room")

S2C = TypeVar("S2C")
A = TypeVar("A")

logger = logging.getLogger("grestws")

Exclude = ServerConnection[Any] | str | Iterable[ServerConnection[Any] | str] | None
"""Connections a push must skip: a connection, a connection id, or several of them."""

_NO_ARG: Any = object()
_encoder = msgspec.json.Encoder()
_serving: weakref.WeakKeyDictionary[ServerConnection[Any], Rooms] = weakref.WeakKeyDictionary()
"""The Rooms of the App that serves each live connection (see :meth:`Rooms.of`)."""


def push_frame(spec: MethodSpec, arg: Any) -> bytes:
    """The ``m`` frame of the fire-and-forget call ``spec(arg)``, encoded once for many.

    Raises:
        ContractError: ``spec`` is a request (it needs an answer from each client).
    """
    if spec.kind is not MethodKind.NOTIFY:
        raise ContractError(f"{spec.path} is a request; only @notify methods can be pushed to many")
    return codec.encode_message(spec.prefix, _encoder.encode(arg) if spec.has_input else b"")


def _excluded(exclude: Exclude) -> tuple[str, ...]:
    if exclude is None:
        return ()
    if isinstance(exclude, (ServerConnection, str)):
        exclude = (exclude,)
    return tuple(item if isinstance(item, str) else item.id for item in exclude)


class Rooms:
    """The rooms of an App's connections, and pushes to rooms, users and connections on
    every process of a cluster. Made by the App: use ``app.rooms``.

    Args:
        connections: The App's registry of live connections.
        halves: The ``server_to_client`` halves of the App's contracts (to find a method).
        broker: How the other processes are reached; :class:`~grestws.broker.LocalBroker`
            (none) by default.

    Concurrency: everything runs on the App's event loop. ``join``, ``leave`` and the
    listings are synchronous; the sends are coroutines only because they hand the push
    to the broker, and may be awaited from any number of tasks at once.
    """

    def __init__(
        self,
        connections: Connections,
        halves: Callable[[], Iterable[ContractHalf]],
        broker: Broker | None = None,
    ) -> None:
        self._connections = connections
        self._halves = halves
        self.broker: Broker = LocalBroker() if broker is None else broker
        self._members: dict[str, dict[ServerConnection[Any], None]] = {}
        self._joined: dict[ServerConnection[Any], set[str]] = {}
        self._by_id: dict[str, ServerConnection[Any]] = {}
        self._specs: dict[Callable[..., Any], tuple[MethodSpec, ContractHalf]] = {}
        self._started = False
        self._broker_observers: list[Callable[[bool, str], object]] = []
        self.recovery: Recovery | None = None
        """What is kept for reconnecting clients (None: nothing; see :mod:`grestws.recovery`)."""
        self.sessions: Sessions | None = None
        self._seq = 0

    def __repr__(self) -> str:
        return f"<Rooms {len(self._members)} rooms, {self.broker!r}>"

    # -- lifecycle ----------------------------------------------------------------------

    @staticmethod
    def of(conn: ServerConnection[Any]) -> Rooms:
        """The rooms of the App serving ``conn``: what a handler uses, so that one handler
        class serves any App (``self.rooms = Rooms.of(conn)`` in its ``__init__``).

        Raises:
            InvalidStateError: no App serves ``conn``.
        """
        rooms = _serving.get(conn)
        if rooms is None:
            raise InvalidStateError(f"{conn!r} is not served by an App")
        return rooms

    def serving(self, conn: ServerConnection[Any]) -> None:
        """Note that this App serves ``conn`` (the App calls it before the handshake)."""
        _serving[conn] = self

    @property
    def node(self) -> str:
        """This process's id in the cluster (the broker's)."""
        return self.broker.node

    async def start(self) -> None:
        """Start the broker (the App does it before its first connection), with its
        history when recovery is on. Idempotent."""
        if not self._started:
            self._started = True
            if self.recovery is not None and self.sessions is None:
                self.sessions = Sessions(self.broker.keep_history(self.recovery))
            await self.broker.start(self._deliver, self._local_members)

    async def stop(self) -> None:
        """Stop the broker; a later connection starts it again. Idempotent."""
        if self._started:
            self._started = False
            await self.broker.stop()

    def set_broker(self, broker: Broker) -> None:
        """Use ``broker`` from now on (before the App serves anything).

        Raises:
            InvalidStateError: the current broker has started.
        """
        from grestws.exceptions import InvalidStateError

        if self._started:
            raise InvalidStateError("the broker is running; set it before serving")
        self.broker = broker

    def connected(self, conn: ServerConnection[Any]) -> None:
        """Make ``conn`` reachable by its id (the App calls it once the handshake is done)."""
        self._by_id[conn.id] = conn

    def forget(self, conn: ServerConnection[Any]) -> None:
        """``conn`` closed: it leaves every room (the App calls it); its session, if it
        has one, is kept for the recovery window."""
        if self._by_id.get(conn.id) is conn:
            del self._by_id[conn.id]
        _serving.pop(conn, None)
        if self.sessions is not None:
            self.sessions.forget(conn)
        for room in self._joined.pop(conn, ()):
            self._drop(conn, room)

    # -- recovery -----------------------------------------------------------------------

    async def welcome(self, conn: ServerConnection[Any]) -> bytes | None:
        """Start ``conn``'s session, or resume the one its client names, if the client
        asked for recovery and the App keeps one (the App calls it during the handshake,
        before ``k``). A resumed connection takes the session's connection id and rooms
        (an older connection of the session is closed), and its pushes are held until
        :meth:`welcomed`.

        Returns:
            The data of the ``k`` frame, or None for a plain ``k``.
        """
        sessions = self.sessions
        offer = None if sessions is None else sessions.offer(conn)
        if sessions is None or offer is None:
            return None
        record = await sessions.load(conn, offer)
        if record is None:
            fresh = sessions.start(conn)
            return sessions.accepted(fresh, None if offer.session is None else False)
        conn.id = record.connection
        previous = sessions.track(conn, record, hold=True) or self._by_id.get(conn.id)
        if previous is not None and previous is not conn:
            sessions.superseded(previous)
            previous.close_soon(CLOSE_NORMAL, "Resumed by another connection")
        # Reachable (its pushes held) before the history is read: a push published
        # from now on is held, and one the read missed is not lost.
        for room in list(record.rooms):
            self.join(conn, room)
        self.connected(conn)
        self._connections.identified(conn)
        # Another process may hold an older connection of the session: close it. The
        # broker hands over its envelopes in order, so once this one is, every push
        # this process published before the joins is in the history the read sees.
        reason = "Resumed by another connection"
        await self._publish(Envelope(self.node, Target.CLOSE_RESUMED, conn.id, reason=reason))
        found = await sessions.history.read(offer.positions, record.created)
        tracked = sessions.get(conn)
        if tracked is None:
            return None  # closed meanwhile
        if found is None:
            return sessions.accepted(sessions.restart(conn), False)
        tracked.replay = sessions.missed(conn, tracked, found, self._half_of)
        return sessions.accepted(tracked.record, True)

    async def welcomed(self, conn: ServerConnection[Any]) -> None:
        """``k`` is out: write what ``conn``'s client missed, then what was held (with
        flow control: see :meth:`Sessions.release <grestws.recovery.sessions.Sessions.release>`)."""
        if self.sessions is not None:
            await self.sessions.release(conn)

    # -- membership ---------------------------------------------------------------------

    def join(self, conn: ServerConnection[Any], room: str) -> None:
        """Add ``conn`` to ``room`` (no-op if it is in it) until it leaves or closes."""
        if conn.closed or conn not in self._connections:
            return  # closed, or on its way out: it would never leave
        joined = self._joined.setdefault(conn, set())
        if room in joined:
            return
        joined.add(room)
        self._members.setdefault(room, {})[conn] = None
        self.broker.presence_changed([self._member(conn, room)], ())
        if self.sessions is not None:
            self.sessions.joined(conn, room)

    def leave(self, conn: ServerConnection[Any], room: str) -> None:
        """Take ``conn`` out of ``room`` (no-op if it is not in it)."""
        joined = self._joined.get(conn)
        if joined is None or room not in joined:
            return
        joined.discard(room)
        if not joined:
            del self._joined[conn]
        self._drop(conn, room)
        if self.sessions is not None:
            self.sessions.left(conn, room)

    def _drop(self, conn: ServerConnection[Any], room: str) -> None:
        members = self._members.get(room)
        if members is not None:
            members.pop(conn, None)
            if not members:
                del self._members[room]
        successor = self._by_id.get(conn.id)
        if successor is not None and successor is not conn and room in self._joined.get(successor, ()):
            return  # a connection that resumed this one's session is there in its place
        self.broker.presence_changed((), [self._member(conn, room)])

    def _member(self, conn: ServerConnection[Any], room: str) -> Member:
        identity = conn.identity
        return Member(room, conn.id, None if identity is None else identity.id, self.broker.node)

    def rooms_of(self, conn: ServerConnection[Any]) -> frozenset[str]:
        """The rooms ``conn`` is in."""
        return frozenset(self._joined.get(conn, ()))

    def members(self, room: str) -> list[ServerConnection[Any]]:
        """The connections of this process in ``room``."""
        return list(self._members.get(room, ()))

    def size(self, room: str) -> int:
        """How many connections of this process are in ``room``."""
        return len(self._members.get(room, ()))

    def sizes(self) -> dict[str, int]:
        """Every room of this process with how many of its connections are in it."""
        return {room: len(members) for room, members in self._members.items()}

    def _local_members(self) -> Iterator[Member]:
        for room, members in self._members.items():
            for conn in members:
                yield self._member(conn, room)

    async def presence(self, room: str) -> list[Member]:
        """Who is in ``room`` on every process: one :class:`~grestws.broker.Member` per
        connection. With a Redis broker a process that died drops out within its
        presence TTL; while Redis cannot be asked, only this process's members."""
        own = [self._member(conn, room) for conn in self._members.get(room, ())]
        found = await self.broker.present(room)
        if found is None:
            return own
        node = self.broker.node
        return [*own, *(member for member in found if member.node != node)]

    def watchers(self, topic: str, key: object) -> list[ServerConnection[Any]]:
        """The connections of this process watching ``topic`` for ``key``."""
        return self.members(topic_room(topic, key))

    async def users(self, room: str) -> list[str]:
        """The users (identity ids) present in ``room`` on every process, each once, sorted."""
        return sorted({member.user for member in await self.presence(room) if member.user is not None})

    # -- sending ------------------------------------------------------------------------

    @overload
    async def send(
        self,
        room: str,
        method: Callable[[S2C], Awaitable[None]],
        /,
        *,
        exclude: Exclude = None,
        only: Permission | None = None,
    ) -> int: ...
    @overload
    async def send(
        self,
        room: str,
        method: Callable[[S2C, A], Awaitable[None]],
        arg: A,
        /,
        *,
        exclude: Exclude = None,
        only: Permission | None = None,
    ) -> int: ...
    async def send(
        self,
        room: str,
        method: Callable[..., Awaitable[None]],
        arg: Any = _NO_ARG,
        /,
        *,
        exclude: Exclude = None,
        only: Permission | None = None,
    ) -> int:
        """Push ``method(arg)`` to every member of ``room`` on every process:
        ``await app.rooms.send("general", ChatClient.new_message, msg, exclude=conn)``.

        Returns:
            How many connections of this process it was written to.

        Raises:
            ContractError: ``method`` is a request, or of no contract the App serves.
        """
        return await self._send(Target.ROOM, room, method, arg, exclude, only)

    @overload
    async def send_to_topic(
        self,
        topic: str,
        key: object,
        method: Callable[[S2C], Awaitable[None]],
        /,
        *,
        exclude: Exclude = None,
    ) -> int: ...
    @overload
    async def send_to_topic(
        self,
        topic: str,
        key: object,
        method: Callable[[S2C, A], Awaitable[None]],
        arg: A,
        /,
        *,
        exclude: Exclude = None,
    ) -> int: ...
    async def send_to_topic(
        self,
        topic: str,
        key: object,
        method: Callable[..., Awaitable[None]],
        arg: Any = _NO_ARG,
        /,
        *,
        exclude: Exclude = None,
    ) -> int:
        """Push ``method(arg)`` to every connection watching ``topic`` for ``key`` (see
        :func:`grestws.watch`), on every process. Returns how many of this process got it.

        Raises:
            ContractError: as :meth:`send`.
        """
        return await self._send(Target.ROOM, topic_room(topic, key), method, arg, exclude, None)

    @overload
    async def send_to_user(
        self,
        user: str,
        method: Callable[[S2C], Awaitable[None]],
        /,
        *,
        exclude: Exclude = None,
    ) -> int: ...
    @overload
    async def send_to_user(
        self,
        user: str,
        method: Callable[[S2C, A], Awaitable[None]],
        arg: A,
        /,
        *,
        exclude: Exclude = None,
    ) -> int: ...
    async def send_to_user(
        self,
        user: str,
        method: Callable[..., Awaitable[None]],
        arg: Any = _NO_ARG,
        /,
        *,
        exclude: Exclude = None,
    ) -> int:
        """Push ``method(arg)`` to every connection of the identity ``user`` (all of a
        user's devices) on every process. Returns how many of this process got it.

        Raises:
            ContractError: as :meth:`send`.
        """
        return await self._send(Target.USER, user, method, arg, exclude, None)

    @overload
    async def send_to_connection(
        self, connection: str, method: Callable[[S2C], Awaitable[None]], /
    ) -> int: ...
    @overload
    async def send_to_connection(
        self, connection: str, method: Callable[[S2C, A], Awaitable[None]], arg: A, /
    ) -> int: ...
    async def send_to_connection(
        self, connection: str, method: Callable[..., Awaitable[None]], arg: Any = _NO_ARG, /
    ) -> int:
        """Push ``method(arg)`` to the connection with id ``connection``, on whichever
        process it is. Returns 1 if it is here and got it, else 0.

        Raises:
            ContractError: as :meth:`send`.
        """
        return await self._send(Target.CONNECTION, connection, method, arg, None, None)

    @overload
    async def send_to_everyone(
        self,
        method: Callable[[S2C], Awaitable[None]],
        /,
        *,
        exclude: Exclude = None,
        only: Permission | None = None,
    ) -> int: ...
    @overload
    async def send_to_everyone(
        self,
        method: Callable[[S2C, A], Awaitable[None]],
        arg: A,
        /,
        *,
        exclude: Exclude = None,
        only: Permission | None = None,
    ) -> int: ...
    async def send_to_everyone(
        self,
        method: Callable[..., Awaitable[None]],
        arg: Any = _NO_ARG,
        /,
        *,
        exclude: Exclude = None,
        only: Permission | None = None,
    ) -> int:
        """Push ``method(arg)`` to every open connection of the method's contract on
        every process. Returns how many of this process got it.

        Raises:
            ContractError: as :meth:`send`.
        """
        return await self._send(Target.EVERYONE, "", method, arg, exclude, only)

    async def disconnect_user(
        self, user: str, *, code: int = CLOSE_POLICY, reason: str = "Disconnected by the server"
    ) -> int:
        """Close every connection of the identity ``user`` on every process (1008 by
        default): each gets a close frame at once and the closing handshake runs on in
        the background, bounded by the close timeout. Returns how many of this process
        were closed."""
        closed = self._close_here(Target.CLOSE_USER, user, code, reason)
        if closed:
            await asyncio.sleep(0)  # the closes started: their close frames go out first
        await self._publish(Envelope(self.node, Target.CLOSE_USER, user, code=code, reason=reason))
        return closed

    async def disconnect_connection(
        self, connection: str, *, code: int = CLOSE_POLICY, reason: str = "Disconnected by the server"
    ) -> int:
        """Close the connection with id ``connection`` (one device) on whichever process
        it is. Returns 1 if it was here, else 0."""
        closed = self._close_here(Target.CLOSE_CONNECTION, connection, code, reason)
        if closed:
            await asyncio.sleep(0)  # the close started: its close frame goes out first
        else:
            await self._publish(
                Envelope(self.node, Target.CLOSE_CONNECTION, connection, code=code, reason=reason)
            )
        return closed

    async def _send(
        self,
        target: Target,
        name: str,
        method: Callable[..., Awaitable[None]],
        arg: Any,
        exclude: Exclude,
        only: Permission | None,
    ) -> int:
        spec, half = self._spec(method)
        if spec.has_input and arg is _NO_ARG:
            raise ContractError(f"{spec.path} takes an argument")
        frame = push_frame(spec, None if arg is _NO_ARG else arg)
        skip = _excluded(exclude)
        seq = 0
        if self.sessions is not None:
            self._seq = seq = self._seq + 1
        written = self._write(self._targets(target, name), half, frame, skip, only, self.node, seq)
        if seq or target is not Target.CONNECTION or not written:  # with a seq: for the history too
            wire_only = None if only is None else permission_to_builtins(only)
            envelope = Envelope(
                self.node, target, name, frame, skip, wire_only, seq=seq, time=now_ms() if seq else 0
            )
            await self._publish(envelope)
        return written

    def observe_broker(self, observer: Callable[[bool, str], object]) -> None:
        """Call ``observer(published, kind)`` for every envelope this process publishes to a
        broker (``published`` True) or receives from one (False); ``kind`` is whom it is
        for (``room``, ``user``, ``connection``, ``everyone``, ``close_user``, ...). Without
        a broker (one process) it is never called. It runs in the event loop: keep it short."""
        self._broker_observers.append(observer)

    def _observed(self, published: bool, envelope: Envelope) -> None:
        if not isinstance(self.broker, LocalBroker):
            kind = envelope.target.name.lower()
            for observer in self._broker_observers:
                observer(published, kind)

    async def _publish(self, envelope: Envelope) -> None:
        if self._started:
            await self.broker.publish(envelope)
            if self._broker_observers:
                self._observed(True, envelope)

    def _spec(self, method: Callable[..., Any]) -> tuple[MethodSpec, ContractHalf]:
        found = self._specs.get(method)
        if found is None:
            for half in self._halves():
                spec = half.by_function.get(method)
                if spec is not None:
                    found = self._specs[method] = (spec, half)
                    break
            else:
                raise ContractError(
                    f"{method!r} is not a server-to-client method of a contract the App serves"
                )
        return found

    def _targets(self, target: Target, name: str) -> Iterable[ServerConnection[Any]]:
        if target is Target.ROOM:
            return list(self._members.get(name, ()))
        if target is Target.USER:
            return self._connections.of_identity(name)
        if target is Target.CONNECTION:
            conn = self._by_id.get(name)
            return () if conn is None else (conn,)
        return list(self._by_id.values())

    def _write(
        self,
        targets: Iterable[ServerConnection[Any]],
        half: ContractHalf,
        frame: bytes,
        skip: tuple[str, ...],
        only: Permission | None,
        origin: str = "",
        seq: int = 0,
    ) -> int:
        """Write ``frame`` to each target of ``half``'s contract that is not skipped; to
        one with a session, with its position ``origin.seq`` (when it has one)."""
        sessions = self.sessions if seq else None
        positioned: bytes | None = None
        written = 0
        for conn in targets:
            if skip and conn.id in skip:
                continue
            if only is not None and not only.allows(conn.identity):
                continue
            if conn.schema.contract.server_to_client is not half:
                continue  # a member of another contract: the frame means nothing to it
            tracked = None if sessions is None else sessions.get(conn)
            if tracked is None:
                ok = conn.push(frame)
            else:
                if positioned is None:
                    positioned = positioned_frame(frame, origin, seq)
                ok = sessions.push(conn, tracked, positioned, origin, seq)  # type: ignore[union-attr]
            written += ok
        return written

    def _close_here(self, target: Target, name: str, code: int, reason: str) -> int:
        if target is Target.CLOSE_USER:
            targets = self._connections.of_identity(name)
        else:
            conn = self._by_id.get(name)
            targets = [] if conn is None else [conn]
        closed = 0
        for conn in targets:
            if not conn.closed:  # one that closed may stay registered while its calls end
                conn.close_soon(code, reason)
                closed += 1
        return closed

    def _deliver(self, envelope: Envelope) -> None:
        """An envelope from another process: deliver it to this process's connections."""
        if self._broker_observers:
            self._observed(False, envelope)
        target = envelope.target
        if target in (Target.CLOSE_USER, Target.CLOSE_CONNECTION):
            self._close_here(target, envelope.name, envelope.code, envelope.reason)
            return
        if target is Target.CLOSE_RESUMED:
            old = self._by_id.get(envelope.name)
            if old is not None:
                if self.sessions is not None:
                    self.sessions.superseded(old)
                old.close_soon(envelope.code, envelope.reason)
            return
        half = self._half_of(envelope.frame)
        if half is None:
            return  # a method of no contract served here
        only = None if envelope.only is None else permission_from_builtins(envelope.only)
        targets = self._targets(target, envelope.name)
        self._write(targets, half, envelope.frame, envelope.exclude, only, envelope.origin, envelope.seq)

    def _half_of(self, frame: bytes) -> ContractHalf | None:
        """The contract half an ``m`` frame's method belongs to, among the App's."""
        end = frame.find(b":", 2)
        path = frame[2:end].decode("utf-8", "replace")
        for half in self._halves():
            if path in half.by_path:
                return half
        return None
