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
from urllib.parse import urlsplit, urlunsplit

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
)
from grestws.incidents import PEER_LOG

__all__ = ("RedisBroker",)

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
        self._left: dict[tuple[str, str], Member] = {}
        self._local: LocalMembers = list

    @property
    def shown_url(self) -> str:
        """The URL without its password, for logs."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

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
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def stop(self) -> None:
        """Stop listening, remove this node's presence (best effort, bounded) and close
        the connections. Idempotent."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._redis is not None and self.stats.connected:
            with contextlib.suppress(*_FAILURES):
                await asyncio.wait_for(self._write_presence([], self._own_members()), self.operation_timeout)
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
        link is down or when Redis fails to take it within ``operation_timeout``."""
        redis = self._redis
        if redis is None or not self.stats.connected:
            self.stats.dropped += 1
            return False
        try:
            await asyncio.wait_for(
                redis.publish(self.channel, encode_envelope(envelope)), self.operation_timeout
            )
        except _FAILURES as exc:
            self.stats.dropped += 1
            if PEER_LOG.allow("broker_publish"):
                logger.warning("broker: a publish to %s failed, dropped: %s", self.channel, exc)
            return False
        self.stats.published += 1
        return True

    async def _listen(self, deliver: Deliver) -> None:
        """Subscribe and deliver, reconnecting with backoff while not stopped."""
        assert self._listener is not None
        failures = 0
        lost = False
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.stats.connected = True
                self._subscribed.set()
                if lost:
                    self.stats.reconnects += 1
                    logger.warning("broker: linked to %s again", self.shown_url)
                    if self._redis is not None:  # drop the connections made before the outage
                        await self._redis.connection_pool.disconnect()
                    self._dirty.set()  # write this node's presence again
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
        except Exception:
            logger.exception("broker: delivering an envelope failed")

    # -- presence -----------------------------------------------------------------------

    def presence_changed(self, joined: Iterable[Member], left: Iterable[Member]) -> None:
        """Note joins and leaves; the presence task writes them soon, in one round trip
        (the node's members as they are then, and the removals)."""
        for member in left:
            self._left[(member.room, member.connection)] = member
        self._dirty.set()

    async def present(self, room: str) -> list[Member] | None:
        """Every node's members of ``room`` whose presence has not expired; None when
        Redis cannot be asked (the caller falls back to this node's own)."""
        redis = self._redis
        if redis is None or not self.stats.connected:
            return None
        try:
            query: Any = redis.zrangebyscore(self._key(room), time.time(), "+inf")
            found: list[bytes] = await asyncio.wait_for(query, self.operation_timeout)
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
        """Write joins and leaves as they come, and refresh every member of this node
        every third of the TTL."""
        interval = self.presence_ttl / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), interval)
            self._dirty.clear()
            left, self._left = self._left, {}
            if not self.stats.connected:
                continue  # written in full once the link is back
            try:
                await asyncio.wait_for(
                    self._write_presence(self._own_members(), list(left.values())), self.operation_timeout
                )
            except _FAILURES as exc:
                if PEER_LOG.allow("broker_presence"):
                    logger.warning("broker: writing presence failed: %s", exc)
                self._dirty.set()

    def _own_members(self) -> list[Member]:
        return list(self._local())

    async def _write_presence(self, present: list[Member], gone: list[Member]) -> None:
        redis = self._redis
        if redis is None:
            return
        expires = time.time() + self.presence_ttl
        keep = max(1, int(self.presence_ttl * 2))
        pipe = redis.pipeline(transaction=False)
        rooms: set[str] = set()
        for member in gone:
            pipe.zrem(self._key(member.room), self._member(member))
        for member in present:
            pipe.zadd(self._key(member.room), {self._member(member): expires})
            rooms.add(member.room)
        for room in rooms:
            pipe.zremrangebyscore(self._key(room), "-inf", time.time())
            pipe.expire(self._key(room), keep)
        await pipe.execute()

    def _key(self, room: str) -> str:
        return f"{self.namespace}:presence:{room}"

    def _member(self, member: Member) -> bytes:
        return _entry.encode((self.node, member.connection, member.user))
