# redis-py's annotations leave some parameters untyped (``**kwargs``).
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
"""The Redis broker: fan-out across processes with Redis pub/sub, presence with expiry.

Needs ``pip install "grestws[redis]"`` (redis-py). Every node subscribes to one channel,
``<namespace>:fanout``, and publishes every envelope for other nodes to it, once; each
node delivers to its own connections. Presence lives in one sorted set per room,
``<namespace>:presence:<room>``, each member scored with the time it expires: a node
refreshes its own members every third of ``presence_ttl``, so the members of a node that
died vanish at most ``presence_ttl`` seconds after its last refresh.

When Redis goes away, publishing fails at once (the envelope is counted as dropped) or
within ``operation_timeout``; the subscriber reconnects with exponential backoff and full
jitter, subscribes again and writes the node's presence again. Delivery to the node's own
connections never depends on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from grestws.broker import (
    BrokerStats,
    Deliver,
    Envelope,
    LocalMembers,
    Member,
    decode_envelope,
    encode_envelope,
    new_node_id,
    redact,
)
from grestws.broker.redis_history import RedisHistory
from grestws.exceptions import ContractError
from grestws.incidents import PEER_LOG
from grestws.recovery import History, Recovery

__all__ = ("MAX_OUTBOX", "RedisBroker")

MAX_OUTBOX = 10_000
"""How many envelopes may wait to be published; past it a publish is dropped at once."""

logger = logging.getLogger("grestws")

_FAILURES = (RedisError, OSError, TimeoutError)
_entry = msgspec.json.Encoder()
_entry_decoder = msgspec.json.Decoder(tuple[str, str, str | None])


class RedisBroker:
    """A :class:`~grestws.broker.Broker` over Redis.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS, ``unix://`` for a socket).
        namespace: The prefix of every key and channel: Apps that share a Redis but not
            their rooms need different ones.
        presence_ttl: Seconds a node's presence outlives its last refresh.
        operation_timeout: Seconds a publish or a presence query may take before it
            counts as failed; also the connect timeout.
        backoff: The first and the longest pause, in seconds, between reconnects.

    Concurrency: publish from any number of tasks at once; one subscriber task delivers
    what other nodes publish, in the order Redis hands it over.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "grestws",
        presence_ttl: float = 30.0,
        operation_timeout: float = 2.0,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.channel = f"{namespace}:fanout"
        self.presence_ttl = presence_ttl
        self.operation_timeout = operation_timeout
        self.backoff = backoff
        self.node = new_node_id()
        self.stats = BrokerStats()
        self._redis: aioredis.Redis | None = None
        self._listener: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._dirty = asyncio.Event()
        self._joined: dict[tuple[str, str], Member] = {}
        self._left: dict[tuple[str, str], Member] = {}
        self._full = True
        self._local: LocalMembers = list
        self._outbox: list[tuple[bytes, asyncio.Future[bool], int]] = []
        self._history: RedisHistory | None = None
        self._wake = asyncio.Event()

    @property
    def shown_url(self) -> str:
        """The URL without its password, for logs."""
        return redact(self.url)

    def __repr__(self) -> str:
        state = "connected" if self.stats.connected else "disconnected"
        return f"<RedisBroker {self.channel} node {self.node} {state}>"

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, deliver: Deliver, local_members: LocalMembers) -> None:
        """Connect and subscribe (waiting at most ``operation_timeout`` for it; past that
        it goes on trying in the background). Idempotent."""
        if self._tasks:
            return
        self.node = new_node_id()  # here, not at import: a forked worker gets its own
        self._local = local_members
        timeout = self.operation_timeout
        # One retry: a connection the pool kept from before an outage fails once, then a
        # fresh one is made; with Redis down, both attempts fail fast.
        options: dict[str, Any] = {"socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 1)}
        self._redis = aioredis.Redis.from_url(self.url, socket_timeout=timeout, **options)
        # The subscriber waits for messages as long as there are none: no read timeout.
        self._listener = aioredis.Redis.from_url(self.url, socket_timeout=None, **options)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(deliver), name="grestws-broker-listen"),
            loop.create_task(self._keep_presence(), name="grestws-broker-presence"),
            loop.create_task(self._send(), name="grestws-broker-send"),
        ]
        if self._history is not None:
            self._tasks.append(
                loop.create_task(self._history.keep(self._redis), name="grestws-broker-history")
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._subscribed.wait()

    async def stop(self) -> None:
        """Hand over what is queued (within ``operation_timeout``), stop listening,
        remove this node's presence (best effort, bounded) and close the connections.
        Idempotent."""
        if self._outbox and self.stats.connected:
            waiting = [sent for _, sent, _ in self._outbox]
            await asyncio.wait(waiting, timeout=self.operation_timeout)
        tasks, self._tasks = self._tasks, []
        for _ in range(5):  # a cancellation can be lost inside redis-py on 3.11: ask again
            pending = [task for task in tasks if not task.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=self.operation_timeout)  # the caller's cancel reaches it
        if self._redis is not None and self.stats.connected:
            gone = [*self._local(), *self._left.values()]
            self._left.clear()
            with contextlib.suppress(*_FAILURES):
                async with asyncio.timeout(self.operation_timeout):
                    await self._write_presence([], gone)
        for client in (self._redis, self._listener):
            if client is not None:
                with contextlib.suppress(*_FAILURES):
                    await client.aclose()
        self._redis = self._listener = None
        self._subscribed.clear()
        self.stats.connected = False

    # -- fan-out ------------------------------------------------------------------------

    async def publish(self, envelope: Envelope) -> bool:
        """Publish ``envelope`` to the other nodes; False, counted as dropped, while the
        link is down, when :data:`MAX_OUTBOX` envelopes wait already, or when Redis fails
        to take it within ``operation_timeout``.

        Envelopes go out in the order of the calls, through one connection, batched in
        pipelines, so every other node gets one node's envelopes in that order.
        Cancelling the call does not take back an envelope queued already.
        """
        if not self._tasks or not self.stats.connected or len(self._outbox) >= MAX_OUTBOX:
            self.stats.dropped += 1
            return False
        sent: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outbox.append((encode_envelope(envelope), sent, envelope.seq))
        self._wake.set()
        return await sent

    async def _send(self) -> None:
        """Hand the queued envelopes to Redis in order, in pipelines of up to 256; what is
        still queued when it stops counts as dropped."""
        try:
            await self._send_queued()
        finally:
            queued, self._outbox = self._outbox, []
            self.stats.dropped += len(queued)
            for _, sent, _ in queued:
                if not sent.done():
                    sent.set_result(False)

    async def _send_queued(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and self._redis is not None:
                batch = self._outbox[:256]  # stays queued until sent, so a stop settles it
                pipe = self._redis.pipeline(transaction=False)
                if self._history is not None:  # kept before it is published: see redis_history
                    self._history.add(pipe, self.node, [(seq, data) for data, _, seq in batch if seq])
                for data, _, _ in batch:
                    pipe.publish(self.channel, data)
                try:
                    async with asyncio.timeout(self.operation_timeout):
                        await pipe.execute()
                    ok = True
                    self.stats.published += len(batch)
                except _FAILURES as exc:
                    ok = False
                    self.stats.dropped += len(batch)
                    if PEER_LOG.allow("broker_publish"):
                        logger.warning(
                            "broker: %d publishes to %s failed, dropped: %s", len(batch), self.channel, exc
                        )
                del self._outbox[: len(batch)]
                for _, sent, _ in batch:
                    if not sent.done():
                        sent.set_result(ok)

    async def _listen(self, deliver: Deliver) -> None:
        """Subscribe and deliver, reconnecting with backoff while not stopped."""
        assert self._listener is not None
        failures = 0
        lost = False
        linked = False
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.stats.connected = True
                self._subscribed.set()
                if lost and linked:
                    self.stats.reconnects += 1
                    logger.warning("broker: linked to %s again", self.shown_url)
                    self._full = True
                    if self._redis is not None:  # drop the connections made before the outage
                        await self._redis.connection_pool.disconnect()
                    self._dirty.set()  # write this node's presence again
                linked = True
                failures = 0
                while True:
                    message: dict[str, Any] | None = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=None
                    )
                    if message is not None and message.get("type") == "message":
                        self._received(message["data"], deliver)
            except _FAILURES as exc:
                why = str(exc) or type(exc).__name__
                if self.stats.connected or not lost:  # the first failure of a loss: say it once
                    logger.warning("broker: no link to %s (%s); retrying with backoff", self.shown_url, why)
                else:
                    logger.debug("broker: still no link to %s (%s)", self.shown_url, why)
                self.stats.connected = False
                self._subscribed.clear()
                lost = True
            finally:
                with contextlib.suppress(*_FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            first, longest = self.backoff
            await asyncio.sleep(random.uniform(0, min(longest, first * 2**failures)))
            failures += 1

    def _received(self, data: object, deliver: Deliver) -> None:
        try:
            envelope = decode_envelope(data if isinstance(data, bytes) else b"")
        except msgspec.MsgspecError:
            self.stats.malformed += 1
            if PEER_LOG.allow("broker_malformed"):
                logger.warning("broker: ignored a message on %s that is not an envelope", self.channel)
            return
        if envelope.origin == self.node:
            return  # delivered here already, when it was published
        self.stats.received += 1
        try:
            deliver(envelope)
        except ContractError:  # an envelope naming no permission or method that exists
            self.stats.malformed += 1
            if PEER_LOG.allow("broker_malformed"):
                logger.warning("broker: ignored an envelope on %s that names nothing known", self.channel)
        except Exception:
            logger.exception("broker: delivering an envelope failed")

    # -- recovery -----------------------------------------------------------------------

    def keep_history(self, recovery: Recovery) -> History:
        """Keep the history and the sessions in Redis (see :mod:`grestws.broker.redis_history`)."""
        self._history = RedisHistory(self.namespace, recovery, self.operation_timeout)
        return self._history

    # -- presence -----------------------------------------------------------------------

    def presence_changed(self, joined: Iterable[Member], left: Iterable[Member]) -> None:
        """Note joins and leaves; the presence task writes them soon, batched."""
        for member in joined:
            key = (member.room, member.connection)
            self._left.pop(key, None)
            self._joined[key] = member
        for member in left:
            key = (member.room, member.connection)
            self._joined.pop(key, None)
            self._left[key] = member
        self._dirty.set()

    async def present(self, room: str) -> list[Member] | None:
        """Every node's members of ``room`` whose presence has not expired; None when
        Redis cannot be asked (the caller falls back to this node's own)."""
        redis = self._redis
        if redis is None or not self.stats.connected:
            return None
        try:
            query: Any = redis.zrangebyscore(self._key(room), time.time(), "+inf")
            async with asyncio.timeout(self.operation_timeout):
                found: list[bytes] = await query
        except _FAILURES:
            return None
        members: list[Member] = []
        for raw in found:
            try:
                node, connection, user = _entry_decoder.decode(raw)
            except msgspec.MsgspecError:
                continue
            members.append(Member(room, connection, user, node))
        return members

    async def _keep_presence(self) -> None:
        """Write joins and leaves as they come; every third of the TTL, and after the link
        comes back, refresh every member of this node."""
        interval = self.presence_ttl / 3
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, refreshed + interval - loop.time())):
                    await self._dirty.wait()
            self._dirty.clear()
            if not self.stats.connected:
                self._full = True  # written in full once the link is back (which sets _dirty)
                refreshed = loop.time()
                continue
            full = self._full or loop.time() >= refreshed + interval
            joined, self._joined = self._joined, {}
            left, self._left = self._left, {}
            present = list(self._local()) if full else list(joined.values())
            try:
                async with asyncio.timeout(self.operation_timeout):
                    await self._write_presence(present, list(left.values()))
            except _FAILURES as exc:
                if PEER_LOG.allow("broker_presence"):
                    logger.warning("broker: writing presence failed: %s", exc)
                self._full = True
                self._left.update(left)
                refreshed = loop.time() - interval + min(interval, 1.0)  # try again in a second
                continue
            if full:
                self._full = False
                refreshed = loop.time()

    async def _write_presence(self, present: list[Member], gone: list[Member]) -> None:
        """One round trip: remove ``gone``, add or refresh ``present`` (one ZADD per room),
        and drop what expired in the rooms touched."""
        redis = self._redis
        if redis is None:
            return
        now = time.time()
        expires = now + self.presence_ttl
        keep = max(1, int(self.presence_ttl * 2))
        by_room: dict[str, dict[bytes, float]] = {}
        for member in present:
            by_room.setdefault(member.room, {})[self._member(member)] = expires
        gone_by_room: dict[str, list[bytes]] = {}
        for member in gone:
            gone_by_room.setdefault(member.room, []).append(self._member(member))
        pipe = redis.pipeline(transaction=False)
        for room, entries in gone_by_room.items():
            pipe.zrem(self._key(room), *entries)
        for room, mapping in by_room.items():
            key = self._key(room)
            pipe.zadd(key, mapping)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.expire(key, keep)
        if gone_by_room or by_room:
            await pipe.execute()

    def _key(self, room: str) -> str:
        return f"{self.namespace}:presence:{room}"

    def _member(self, member: Member) -> bytes:
        return _entry.encode((self.node, member.connection, member.user))
