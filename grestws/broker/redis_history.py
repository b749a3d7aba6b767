# redis-py's annotations leave some parameters untyped (``**kwargs``).
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
"""The recovery history of a Redis cluster: pushes in Redis streams, sessions in keys.

Each node appends what it publishes to its own stream, ``<namespace>:history:<node>``,
entry id ``<seq>-0``, in the same pipeline as the publish and before it: a node that got
an envelope through pub/sub can read it from the history. The stream keeps at most
``max_entries`` (approximately) and expires ``2 * window`` after its last write; the
nodes with a stream are in the sorted set ``<namespace>:history-nodes``, scored by their
last write. A session is the key ``<namespace>:session:<token>``: rewritten when its
rooms change, kept alive while its connection is open, expiring ``window`` seconds after
it closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Mapping
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from grestws.broker.envelopes import Envelope, decode_envelope
from grestws.incidents import PEER_LOG
from grestws.recovery import Recovery, SessionRecord, read_after

__all__ = ("RedisHistory",)

logger = logging.getLogger("grestws")

_FAILURES = (RedisError, OSError, TimeoutError)
_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(SessionRecord)


class RedisHistory:
    """A :class:`~grestws.recovery.History` in Redis, written by the
    :class:`~grestws.broker.redis.RedisBroker` that made it.

    Args:
        namespace: The broker's key prefix.
        recovery: The window and bounds.
        operation_timeout: Seconds a read may take before it counts as failed (and the
            client as not recovered).

    Concurrency: reads from any number of tasks; session writes are batched by one task.
    """

    def __init__(self, namespace: str, recovery: Recovery, operation_timeout: float) -> None:
        self.recovery = recovery
        self.namespace = namespace
        self.operation_timeout = operation_timeout
        self.nodes_key = f"{namespace}:history-nodes"
        self._redis: aioredis.Redis | None = None
        self._pending: dict[str, tuple[SessionRecord, bool]] = {}
        self._open: dict[str, SessionRecord] = {}
        self._dirty = asyncio.Event()

    def __repr__(self) -> str:
        return f"<RedisHistory {self.namespace} {len(self._open)} open sessions>"

    def stream(self, node: str) -> str:
        """The key of ``node``'s stream."""
        return f"{self.namespace}:history:{node}"

    def _session(self, token: str) -> str:
        return f"{self.namespace}:session:{token}"

    # -- writing pushes (in the broker's publishing pipeline) ---------------------------

    def add(self, pipe: Any, node: str, entries: list[tuple[int, bytes]]) -> None:
        """Append ``entries`` (seq, encoded envelope) of ``node``'s stream to ``pipe``."""
        if not entries:
            return
        key = self.stream(node)
        for seq, data in entries:
            pipe.xadd(key, {"e": data}, id=f"{seq}-0", maxlen=self.recovery.max_entries, approximate=True)
        pipe.pexpire(key, int(self.recovery.window * 2000))
        pipe.zadd(self.nodes_key, {node: time.time() * 1000})

    # -- reading ------------------------------------------------------------------------

    async def read(self, positions: Mapping[str, int], since: int) -> list[Envelope] | None:
        redis = self._redis
        if redis is None:
            return None
        window_ms = self.recovery.window * 2000
        limit = self.recovery.max_entries + 1
        try:
            async with asyncio.timeout(self.operation_timeout):
                oldest = time.time() * 1000 - window_ms
                nodes: list[Any] = await redis.zrangebyscore(self.nodes_key, oldest, "+inf")
                pipe = redis.pipeline(transaction=False)
                for raw in nodes:
                    node = raw.decode()
                    after = positions.get(node)
                    start = "-" if after is None else f"{after + 1}-0"
                    pipe.xrange(self.stream(node), start, "+", count=limit)
                streams: list[list[tuple[bytes, dict[bytes, bytes]]]] = await pipe.execute()
        except _FAILURES as exc:
            if PEER_LOG.allow("history_read"):
                logger.warning("recovery: reading the history failed: %s", exc)
            return None
        parts: list[list[Envelope]] = []
        for raw, found in zip(nodes, streams, strict=True):
            if len(found) >= limit:
                return None  # more missed than is kept
            try:
                entries = [decode_envelope(fields[b"e"]) for _, fields in found]
            except (KeyError, msgspec.MsgspecError):
                return None
            after = positions.get(raw.decode())
            complete_from = 1 if after is not None or not entries else entries[0].seq
            part = read_after(entries, after, since, complete_from)
            if part is None:
                return None
            parts.append(part)
        # Each node's own order stands (its clock may step back); across nodes, by time.
        return list(heapq.merge(*parts, key=lambda envelope: envelope.time))

    # -- sessions -----------------------------------------------------------------------

    def save(self, record: SessionRecord, *, open: bool) -> None:
        if open:
            self._open[record.token] = record
        else:
            self._open.pop(record.token, None)
        self._pending[record.token] = (record, open)
        self._dirty.set()

    async def load(self, token: str) -> SessionRecord | None:
        own = self._open.get(token)
        if own is not None:
            return own
        redis = self._redis
        if redis is None:
            return None
        try:
            async with asyncio.timeout(self.operation_timeout):
                raw: Any = await redis.get(self._session(token))
        except _FAILURES as exc:
            if PEER_LOG.allow("history_read"):
                logger.warning("recovery: reading a session failed: %s", exc)
            return None
        if not isinstance(raw, bytes):
            return None
        try:
            return _record_decoder.decode(raw)
        except msgspec.MsgspecError:
            return None

    async def keep(self, redis: aioredis.Redis) -> None:
        """Write sessions as they change, and keep the open ones alive: a task of the
        broker's, until cancelled."""
        self._redis = redis
        window = self.recovery.window
        interval = window / 3
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, refreshed + interval - loop.time())):
                        await self._dirty.wait()
                self._dirty.clear()
                pending, self._pending = self._pending, {}
                refresh = loop.time() >= refreshed + interval
                pipe = redis.pipeline(transaction=False)
                for token, (record, open) in pending.items():
                    ttl = int(window * (2000 if open else 1000))
                    pipe.set(self._session(token), _record_encoder.encode(record), px=ttl)
                if refresh:
                    for token in self._open:
                        if token not in pending:
                            pipe.pexpire(self._session(token), int(window * 2000))
                try:
                    async with asyncio.timeout(self.operation_timeout):
                        await pipe.execute()
                except _FAILURES as exc:
                    if PEER_LOG.allow("history_write"):
                        logger.warning("recovery: writing sessions failed: %s", exc)
                    for token, item in pending.items():
                        self._pending.setdefault(token, item)
                    await asyncio.sleep(min(interval, 1.0))
                    continue
                if refresh:
                    refreshed = loop.time()
        finally:
            self._redis = None
