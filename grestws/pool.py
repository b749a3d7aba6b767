"""Clients shared across a process: :class:`ClientPool`.

A service that talks to other services over grestws wants one connection per server and
identity, not one per task. ``await pool.acquire(url, schema, headers=...)`` hands out
the client for that URL, schema and handshake, connecting it on first use; tasks that ask
for the same one at once share one connect. Each acquire is matched by a release (or use
``async with pool.get(...)``); the last release closes the client, at once or after
``idle_timeout``. A client that closes for good (its server refused it, say) leaves the
pool, and the next acquire connects a new one.
"""

from __future__ import annotations

import asyncio
import logging
import typing
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

from typing_extensions import Unpack

from grestws._util import Opening
from grestws.client import Client, ClientOptions, ClientState
from grestws.contract.contract import SocketSchema
from grestws.exceptions import InvalidStateError

__all__ = ("ClientPool",)

C2S = TypeVar("C2S")
S2C = TypeVar("S2C")
Q = TypeVar("Q")

logger = logging.getLogger("grestws")


class _Entry:
    """One pooled client: how many hold it, and its connect while it is under way."""

    __slots__ = ("client", "connecting", "idle", "refs")

    def __init__(self, client: Client[Any, Any]) -> None:
        self.client = client
        self.refs = 0
        self.connecting: asyncio.Task[Any] | None = None
        self.idle: asyncio.TimerHandle | None = None


class ClientPool:
    """Get-or-connect clients, keyed by URL, schema, query and handshake headers, shared
    and reference-counted.

    Args:
        idle_timeout: Seconds a client nobody holds stays open for the next acquire
            (0: closed at the last release; None: kept until :meth:`close`).
        options: Defaults for every client the pool makes (``timeout``, ``reconnect``,
            ...); an acquire's own options override them. They are not part of the key.

    Concurrency: acquire and release from any number of tasks; acquires of one key share
    its client and its connect. Cancelling an acquire releases what it had taken; the
    connect goes on for the others waiting on it.
    """

    def __init__(self, *, idle_timeout: float | None = 0.0, **options: Unpack[ClientOptions]) -> None:
        self.idle_timeout = idle_timeout
        self._options = options
        self._entries: dict[Hashable, _Entry] = {}
        self._by_client: dict[Client[Any, Any], Hashable] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<ClientPool {self.size} open, {self.pending} connecting>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def size(self) -> int:
        """How many clients are connected (held or idle)."""
        return sum(1 for entry in self._entries.values() if entry.connecting is None)

    @property
    def pending(self) -> int:
        """How many clients are connecting."""
        return sum(1 for entry in self._entries.values() if entry.connecting is not None)

    def refs(self, client: Client[Any, Any]) -> int:
        """How many acquires of ``client`` are not released yet."""
        key = self._by_client.get(client)
        return 0 if key is None else self._entries[key].refs

    async def acquire(
        self,
        url: str | Sequence[str],
        schema: SocketSchema[C2S, S2C, Q],
        *,
        query: Q | None = None,
        handlers: S2C | None = None,
        **options: Unpack[ClientOptions],
    ) -> Client[C2S, S2C]:
        """The pooled client for ``url``, ``schema``, ``query`` and the ``headers`` option,
        connected; hand it back with :meth:`release`. ``handlers`` and the other options
        apply only when this acquire makes the client. Cancel-safe.

        Raises:
            InvalidStateError: the pool is closed.
            Exception: what :meth:`Client.connect <grestws.client.Client.connect>` raises
                (every acquire waiting on that connect gets it).
        """
        if self._closed:
            raise InvalidStateError("the pool is closed")
        settings: ClientOptions = {**self._options, **options}
        key = _key(url, schema, query, settings.get("headers"))
        entry = self._entries.get(key)
        if entry is not None and entry.client.state in (ClientState.CLOSING, ClientState.CLOSED):
            self._forget(key, entry)
            entry = None
        if entry is None:
            client: Client[C2S, S2C] = Client(url, schema, handlers=handlers, query=query, **settings)
            entry = self._entries[key] = _Entry(client)
            self._by_client[client] = key
            entry.connecting = asyncio.ensure_future(client.connect())
            client.on_close(lambda code, reason: self._closed_by_itself(key, client))
        entry.refs += 1
        if entry.idle is not None:
            entry.idle.cancel()
            entry.idle = None
        connecting = entry.connecting
        if connecting is not None:
            try:
                await asyncio.shield(connecting)
            except BaseException:
                await self._abandon(key, entry, connecting)
                if self.closed and connecting.cancelled() and not _cancelling():
                    raise InvalidStateError("the pool was closed during the connect") from None
                raise
            entry.connecting = None
        found: Client[C2S, S2C] = entry.client
        return found

    async def _abandon(self, key: Hashable, entry: _Entry, connecting: asyncio.Future[Any]) -> None:
        """An acquire that waited on ``connecting`` gives up (cancelled, or the connect
        failed): drop its ref; the last one cancels a connect under way."""
        if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
            entry.connecting = None  # connected after all: release the ref as usual
            await self.release(entry.client)
            return
        entry.refs -= 1
        if connecting.done():
            self._forget(key, entry)
        elif entry.refs == 0:
            connecting.cancel()
            self._forget(key, entry)

    async def release(self, client: Client[Any, Any]) -> None:
        """Hand back one acquire of ``client``; the last closes it (gracefully), at once
        or after ``idle_timeout``. A client the pool does not hold is ignored."""
        key = self._by_client.get(client)
        if key is None:
            return
        entry = self._entries[key]
        entry.refs = max(0, entry.refs - 1)
        if entry.refs:
            return
        if self.idle_timeout is None:
            return
        if self.idle_timeout > 0:
            loop = asyncio.get_running_loop()
            entry.idle = loop.call_later(self.idle_timeout, self._expire, key, entry)
            return
        self._forget(key, entry)
        await client.disconnect()

    def get(
        self,
        url: str | Sequence[str],
        schema: SocketSchema[C2S, S2C, Q],
        *,
        query: Q | None = None,
        handlers: S2C | None = None,
        **options: Unpack[ClientOptions],
    ) -> Opening[Client[C2S, S2C]]:
        """``async with pool.get(url, schema) as client:``: :meth:`acquire` on the way in,
        :meth:`release` on the way out (``await pool.get(...)`` acquires only)."""

        async def acquire() -> Client[C2S, S2C]:
            return await self.acquire(url, schema, query=query, handlers=handlers, **options)

        return Opening(acquire, self.release)

    def _expire(self, key: Hashable, entry: _Entry) -> None:
        entry.idle = None
        if entry.refs == 0 and self._entries.get(key) is entry:
            self._forget(key, entry)
            task = asyncio.ensure_future(entry.client.disconnect())
            task.add_done_callback(_log_failure)

    def _closed_by_itself(self, key: Hashable, client: Client[Any, Any]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.client is client:
            self._forget(key, entry)

    def _forget(self, key: Hashable, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]
        self._by_client.pop(entry.client, None)
        if entry.idle is not None:
            entry.idle.cancel()
            entry.idle = None

    async def close(self, *, graceful: bool = True, timeout: float = 5.0) -> None:
        """Close every client, held or not, and refuse acquires from now on: gracefully
        (calls in flight get ``timeout`` seconds, as :meth:`Client.disconnect
        <grestws.client.Client.disconnect>`) or at once. Connects under way are cancelled.
        Idempotent."""
        self._closed = True
        entries = list(self._entries.items())
        connects: list[asyncio.Task[Any]] = []
        for key, entry in entries:
            self._forget(key, entry)
            if entry.connecting is not None:
                entry.connecting.cancel()
                connects.append(entry.connecting)
        if connects:  # cancelled connects close what they opened
            await asyncio.wait(connects)
        clients = [entry.client for _, entry in entries if entry.connecting is None]
        closing = [client.disconnect(timeout) if graceful else client.close() for client in clients]
        for result in await asyncio.gather(*closing, return_exceptions=True):
            if isinstance(result, Exception):
                logger.warning("closing a pooled client failed: %s", result)

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _key(url: str | Sequence[str], schema: SocketSchema[Any, Any, Any], query: Any, headers: Any) -> Hashable:
    urls = (url,) if isinstance(url, str) else tuple(url)
    query_key = (
        None if query is None or schema.query is None else tuple(sorted(schema.encode_query(query).items()))
    )
    if headers is None:
        header_key: Hashable = ()
    elif isinstance(headers, Mapping):
        header_key = tuple(sorted(typing.cast("Mapping[str, str]", headers).items()))
    else:
        header_key = ("provider", id(headers))
    return (urls, id(schema), schema.path, query_key, header_key)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("closing an idle pooled client failed: %s", task.exception())
